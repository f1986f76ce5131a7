// The encoder-decoder Transformer (see transformer.h).
#include "nn/transformer.h"

#include <cmath>

#include "core/rng.h"
#include "core/thread_pool.h"

namespace attend::nn {
namespace {

// Dropout stream ids: one per (layer, site) so no two dropout masks in a step coincide.
uint64_t site(uint64_t stream, uint64_t layer, uint64_t where) {
  return mix_stream(stream, layer * 16 + where);
}
constexpr uint64_t kDropoutSeed = 0xd709;

}  // namespace

TransformerConfig TransformerConfig::preset(const std::string& name) {
  TransformerConfig c;
  if (name == "base") {
    // the defaults are the paper's base model
  } else if (name == "big") {
    c.d_model = 1024, c.ffn = 4096, c.heads = 16, c.dropout = 0.3;
  } else if (name == "small") {
    c.d_model = 256, c.ffn = 1024, c.heads = 4, c.encoder_layers = c.decoder_layers = 3;
  } else if (name == "tiny") {
    c.d_model = 128, c.ffn = 256, c.heads = 4, c.encoder_layers = c.decoder_layers = 4;
    c.dropout = 0.3;
  } else {
    ATTEND_FAIL("model.preset: unknown preset '{}' (expected base, big, small or tiny)", name);
  }
  return c;
}

Activation parse_activation(const std::string& name) {
  if (name == "relu") return Activation::kRelu;
  if (name == "gelu") return Activation::kGelu;
  ATTEND_FAIL("model.activation: expected relu or gelu, got '{}'", name);
}

Norm parse_norm(const std::string& name) {
  if (name == "post") return Norm::kPost;
  if (name == "pre") return Norm::kPre;
  ATTEND_FAIL("model.norm: expected post or pre, got '{}'", name);
}

Positions parse_positions(const std::string& name) {
  if (name == "sinusoidal") return Positions::kSinusoidal;
  if (name == "learned") return Positions::kLearned;
  ATTEND_FAIL("model.positions: expected sinusoidal or learned, got '{}'", name);
}

void TransformerConfig::validate() const {
  ATTEND_CHECK(src_vocab > 0 && tgt_vocab > 0, "model: vocabulary sizes must be > 0 (got {} and {})",
               src_vocab, tgt_vocab);
  ATTEND_CHECK(d_model > 0 && ffn > 0, "model.d_model and model.ffn must be > 0 (got {} and {})",
               d_model, ffn);
  ATTEND_CHECK(heads > 0 && d_model % heads == 0,
               "model.heads: d_model {} is not divisible by {} heads", d_model, heads);
  ATTEND_CHECK(encoder_layers >= 1 && decoder_layers >= 1,
               "model.encoder_layers / model.decoder_layers must be >= 1 (got {} and {})",
               encoder_layers, decoder_layers);
  ATTEND_CHECK(dropout >= 0 && dropout < 1, "model.dropout: expected [0, 1), got {}", dropout);
  ATTEND_CHECK(qkv_init_gain > 0 && std::isfinite(qkv_init_gain),
               "model.qkv_init_gain: expected a finite value > 0, got {}", qkv_init_gain);
  ATTEND_CHECK(max_positions >= 1, "model.max_positions: expected >= 1, got {}", max_positions);
  ATTEND_CHECK(!share_embeddings || src_vocab == tgt_vocab,
               "model.share_embeddings needs one joint vocabulary (source {} != target {})",
               src_vocab, tgt_vocab);
  for (const int32_t id : {pad_id, unk_id, bos_id, eos_id})
    ATTEND_CHECK(id >= 0 && id < tgt_vocab && id < src_vocab,
                 "model: special id {} outside the vocabulary of {}", id, tgt_vocab);
  attention.validate();
}

Tensor sinusoidal_positions(int64_t n, int64_t d) {
  HeapScope heap;
  std::vector<float> p(static_cast<size_t>(n * d));
  for (int64_t pos = 0; pos < n; ++pos)
    for (int64_t i = 0; i < d; i += 2) {
      const double angle = static_cast<double>(pos) /
                           std::pow(10000.0, static_cast<double>(i) / static_cast<double>(d));
      p[pos * d + i] = static_cast<float>(std::sin(angle));
      if (i + 1 < d) p[pos * d + i + 1] = static_cast<float>(std::cos(angle));
    }
  return Tensor::from_vector(p, {n, d});
}

FeedForward::FeedForward(int64_t dim, int64_t ffn, Activation activation, uint64_t seed,
                         const std::string& path)
    : fc1(dim, ffn, true, seed, path + ".fc1"), fc2(ffn, dim, true, seed, path + ".fc2"),
      gelu(activation == Activation::kGelu) {
  register_module("fc1", fc1);
  register_module("fc2", fc2);
}

ag::Variable FeedForward::forward(const ag::Variable& x) const {
  const ag::Variable h = fc1.forward(x);  // [.., F]
  return fc2.forward(gelu ? ag::gelu(h) : ag::relu(h));
}

EncoderLayer::EncoderLayer(const TransformerConfig& c, uint64_t seed, const std::string& path)
    : self_attn(c.d_model, c.heads, seed, path + ".self_attn", DType::kF32, c.attention,
                c.qkv_init_gain),
      self_attn_layer_norm(c.d_model),
      ffn(c.d_model, c.ffn, c.activation, seed, path),
      final_layer_norm(c.d_model),
      pre_norm(c.norm == Norm::kPre) {
  register_module("self_attn", self_attn);
  register_module("self_attn_layer_norm", self_attn_layer_norm);
  // fc1/fc2 sit directly in the layer (PyTorch reference names: layers.i.fc1.weight).
  register_module("fc1", ffn.fc1);
  register_module("fc2", ffn.fc2);
  register_module("final_layer_norm", final_layer_norm);
}

ag::Variable EncoderLayer::forward(const ag::Variable& x, const ops::AttentionMask& mask,
                                   double p, uint64_t stream) const {
  Residual r(x, pre_norm);
  r.apply(self_attn_layer_norm, [&](const ag::Variable& y) { return self_attn.forward(y, y, mask); },
          p, kDropoutSeed, site(stream, 0, 0));
  r.apply(final_layer_norm, [&](const ag::Variable& y) { return ffn.forward(y); }, p, kDropoutSeed,
          site(stream, 0, 1));
  return r.finish();
}

DecoderLayer::DecoderLayer(const TransformerConfig& c, uint64_t seed, const std::string& path)
    : self_attn(c.d_model, c.heads, seed, path + ".self_attn", DType::kF32, {}, c.qkv_init_gain),
      self_attn_layer_norm(c.d_model),
      encoder_attn(c.d_model, c.heads, seed, path + ".encoder_attn", DType::kF32, {},
                   c.qkv_init_gain),
      encoder_attn_layer_norm(c.d_model),
      ffn(c.d_model, c.ffn, c.activation, seed, path),
      final_layer_norm(c.d_model),
      pre_norm(c.norm == Norm::kPre) {
  register_module("self_attn", self_attn);
  register_module("self_attn_layer_norm", self_attn_layer_norm);
  register_module("encoder_attn", encoder_attn);
  register_module("encoder_attn_layer_norm", encoder_attn_layer_norm);
  register_module("fc1", ffn.fc1);
  register_module("fc2", ffn.fc2);
  register_module("final_layer_norm", final_layer_norm);
}

ag::Variable DecoderLayer::forward(const ag::Variable& x, const ag::Variable& memory,
                                   const ops::AttentionMask& self_mask,
                                   const ops::AttentionMask& memory_mask, double p,
                                   uint64_t stream) const {
  Residual r(x, pre_norm);
  r.apply(self_attn_layer_norm,
          [&](const ag::Variable& y) { return self_attn.forward(y, y, self_mask); }, p,
          kDropoutSeed, site(stream, 0, 0));
  r.apply(encoder_attn_layer_norm,
          [&](const ag::Variable& y) { return encoder_attn.forward(y, memory, memory_mask); }, p,
          kDropoutSeed, site(stream, 0, 1));
  r.apply(final_layer_norm, [&](const ag::Variable& y) { return ffn.forward(y); }, p, kDropoutSeed,
          site(stream, 0, 2));
  return r.finish();
}

namespace {

Tensor ffn_value(const FeedForward& f, const Tensor& x) {
  const Tensor h = ops::linear(x, f.fc1.weight.value(), f.fc1.bias.value());
  return ops::linear(f.gelu ? ops::gelu(h) : ops::relu(h), f.fc2.weight.value(), f.fc2.bias.value());
}

}  // namespace

Tensor DecoderLayer::step(const Tensor& x, LayerKv& cache, const DecodeRows& rows,
                          const Tensor& self_lengths) const {
  auto self = [&](const Tensor& y) {  // attends to the slot's positions up to this one
    auto [k, v] = self_attn.project_kv(y);  // [n, H, 1, Dh]
    ops::write_positions(cache.self_k, k, rows.self_slots, rows.positions);
    ops::write_positions(cache.self_v, v, rows.self_slots, rows.positions);
    ops::AttentionMask mask;
    mask.key_lengths = self_lengths;
    return self_attn.attend_cached(y, cache.self_k, cache.self_v, mask, rows.self_slots);
  };
  auto cross = [&](const Tensor& y) {
    ops::AttentionMask mask;
    mask.key_lengths = rows.source_lengths;
    return encoder_attn.attend_cached(y, cache.memory_k, cache.memory_v, mask, rows.memory_slots);
  };
  const Tensor h = residual_value(self_attn_layer_norm, pre_norm, x, self);
  const Tensor g = residual_value(encoder_attn_layer_norm, pre_norm, h, cross);
  return residual_value(final_layer_norm, pre_norm, g,
                        [&](const Tensor& y) { return ffn_value(ffn, y); });
}

KvCache::KvCache(int64_t layers_, int64_t heads, int64_t head_dim)
    : layers(static_cast<size_t>(layers_)), heads_(heads), head_dim_(head_dim) {}

void KvCache::reserve(int64_t slots, int64_t positions, int64_t memory_slots,
                      int64_t source_positions) {
  // Grow by at least doubling, so that admitting requests one by one copies O(1) per position.
  auto grown = [](int64_t have, int64_t want) {
    return want <= have ? have : std::max(want, 2 * have);
  };
  const int64_t S = grown(slots_, slots), P = grown(positions_, positions);
  const int64_t M = grown(memory_slots_, memory_slots), L = grown(source_positions_, source_positions);
  HeapScope heap;  // the cache outlives every step's arena
  auto regrow = [&](Tensor& t, int64_t rows, int64_t cap, int64_t old_rows) {
    Tensor bigger = Tensor::empty({rows, heads_, cap, head_dim_});
    if (t.defined() && old_rows > 0) {  // keep the contents: old slot r -> slot r, positions 0..
      std::vector<int32_t> r(static_cast<size_t>(old_rows));
      for (int64_t i = 0; i < old_rows; ++i) r[static_cast<size_t>(i)] = static_cast<int32_t>(i);
      ops::write_positions(bigger, t, Tensor::from_vector(r, {old_rows}),
                           Tensor::zeros({old_rows}, DType::kI32));
    }
    t = bigger;
  };
  if (S != slots_ || P != positions_)
    for (auto& l : layers) {
      regrow(l.self_k, S, P, slots_);
      regrow(l.self_v, S, P, slots_);
    }
  if (M != memory_slots_ || L != source_positions_)
    for (auto& l : layers) {
      regrow(l.memory_k, M, L, memory_slots_);
      regrow(l.memory_v, M, L, memory_slots_);
    }
  slots_ = S, positions_ = P, memory_slots_ = M, source_positions_ = L;
}

void KvCache::copy_slots(const Tensor& from, const Tensor& to, const Tensor& lengths) {
  for (auto& l : layers) {
    ops::copy_positions(l.self_k, from, to, lengths);
    ops::copy_positions(l.self_v, from, to, lengths);
  }
}

Transformer::Transformer(const TransformerConfig& config, uint64_t seed)
    : config_(config), seed_(seed) {
  config_.validate();
  const TransformerConfig& c = config_;
  if (c.share_embeddings) {
    shared_ = std::make_unique<Embedding>(c.src_vocab, c.d_model, seed, "embed_tokens");
    register_module("embed_tokens", *shared_);
  } else {
    encoder_embed_ = std::make_unique<Embedding>(c.src_vocab, c.d_model, seed, "encoder.embed_tokens");
    decoder_embed_ = std::make_unique<Embedding>(c.tgt_vocab, c.d_model, seed, "decoder.embed_tokens");
    output_projection_ = std::make_unique<Linear>(c.d_model, c.tgt_vocab, false, seed, "output_projection");
    encoder_.add("embed_tokens", *encoder_embed_);
    decoder_.add("embed_tokens", *decoder_embed_);
  }
  if (c.positions == Positions::kLearned) {
    encoder_positions_ = std::make_unique<Embedding>(c.max_positions, c.d_model, seed,
                                                     "encoder.embed_positions");
    decoder_positions_ = std::make_unique<Embedding>(c.max_positions, c.d_model, seed,
                                                     "decoder.embed_positions");
    encoder_.add("embed_positions", *encoder_positions_);
    decoder_.add("embed_positions", *decoder_positions_);
  }
  for (int64_t i = 0; i < c.encoder_layers; ++i) {
    const std::string name = "layers." + std::to_string(i);
    encoder_layers_.push_back(std::make_unique<EncoderLayer>(c, seed, "encoder." + name));
    encoder_.add(name, *encoder_layers_.back());
  }
  for (int64_t i = 0; i < c.decoder_layers; ++i) {
    const std::string name = "layers." + std::to_string(i);
    decoder_layers_.push_back(std::make_unique<DecoderLayer>(c, seed, "decoder." + name));
    decoder_.add(name, *decoder_layers_.back());
  }
  if (c.norm == Norm::kPre) {
    encoder_norm_ = std::make_unique<LayerNorm>(c.d_model);
    decoder_norm_ = std::make_unique<LayerNorm>(c.d_model);
    encoder_.add("layer_norm", *encoder_norm_);
    decoder_.add("layer_norm", *decoder_norm_);
  }
  register_module("encoder", encoder_);
  register_module("decoder", decoder_);
  if (output_projection_) register_module("output_projection", *output_projection_);
  if (c.positions == Positions::kSinusoidal)
    sinusoid_ = ag::Variable(sinusoidal_positions(std::max<int64_t>(c.max_positions, 256), c.d_model));
}

ag::Variable Transformer::sinusoid_table(int64_t n) const {
  if (sinusoid_.shape()[0] >= n) return sinusoid_;
  HeapScope heap;
  return ag::Variable(sinusoidal_positions(n, config_.d_model));  // longer than max_positions
}

ag::Variable Transformer::embed(const Embedding& table, const Embedding* learned, const Tensor& ids,
                                uint64_t stream) const {
  const int64_t B = ids.size(0), T = ids.size(1), D = config_.d_model;
  ATTEND_CHECK(T <= config_.max_positions || config_.positions == Positions::kSinusoidal,
               "transformer: sequence of {} tokens exceeds model.max_positions {}", T,
               config_.max_positions);
  std::vector<int32_t> pos(static_cast<size_t>(B * T));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) pos[b * T + t] = static_cast<int32_t>(t);
  const Tensor pos_ids = Tensor::from_vector(pos, {B, T});
  ag::Variable p;
  if (learned) {
    p = learned->forward(pos_ids);
  } else {
    p = ag::embedding(pos_ids, sinusoid_table(T));  // constant rows, no gradient
  }
  const ag::Variable x = ag::add(ag::affine(table.forward(ids), std::sqrt(static_cast<double>(D))), p);
  return ag::dropout(x, active_dropout(), kDropoutSeed, stream);
}

ag::Variable Transformer::encode(const Tensor& src, const Tensor& src_lengths,
                                 uint64_t stream) const {
  ATTEND_CHECK(src.dim() == 2 && src.dtype() == DType::kI32,
               "transformer.encode: expected i32 source ids [B, S], got {}", src.str());
  const Embedding& table = shared_ ? *shared_ : *encoder_embed_;
  ag::Variable x = embed(table, encoder_positions_.get(), src, site(stream, 1000, 0));
  ops::AttentionMask mask;
  mask.key_lengths = src_lengths;
  for (size_t i = 0; i < encoder_layers_.size(); ++i)
    x = encoder_layers_[i]->forward(x, mask, active_dropout(), site(stream, 1 + i, 0));
  if (encoder_norm_) x = encoder_norm_->forward(x);
  return x;
}

ag::Variable Transformer::decode(const Tensor& tgt_in, const Tensor& tgt_lengths,
                                 const ag::Variable& memory, const Tensor& src_lengths,
                                 uint64_t stream) const {
  ATTEND_CHECK(tgt_in.dim() == 2 && tgt_in.dtype() == DType::kI32,
               "transformer.decode: expected i32 target ids [B, T], got {}", tgt_in.str());
  const Embedding& table = shared_ ? *shared_ : *decoder_embed_;
  ag::Variable x = embed(table, decoder_positions_.get(), tgt_in, site(stream, 2000, 0));
  ops::AttentionMask self_mask;
  self_mask.key_lengths = tgt_lengths;
  self_mask.causal = true;
  ops::AttentionMask memory_mask;
  memory_mask.key_lengths = src_lengths;
  for (size_t i = 0; i < decoder_layers_.size(); ++i)
    x = decoder_layers_[i]->forward(x, memory, self_mask, memory_mask, active_dropout(),
                                    site(stream, 2001 + i, 0));
  if (decoder_norm_) x = decoder_norm_->forward(x);
  return x;
}

KvCache Transformer::make_cache() const {
  return KvCache(config_.decoder_layers, config_.heads, config_.d_model / config_.heads);
}

void Transformer::write_memory(const Tensor& memory, const Tensor& slots, KvCache& cache) const {
  const int64_t B = memory.size(0), S = memory.size(1);
  ATTEND_CHECK(S <= cache.source_positions(), "write_memory: {} source positions for a cache of {}",
               S, cache.source_positions());
  const Tensor zeros = Tensor::zeros({B}, DType::kI32);
  for (size_t i = 0; i < decoder_layers_.size(); ++i) {
    const auto [k, v] = decoder_layers_[i]->encoder_attn.project_kv(memory);  // [B, H, S, Dh]
    ops::write_positions(cache.layers[i].memory_k, k, slots, zeros);
    ops::write_positions(cache.layers[i].memory_v, v, slots, zeros);
  }
}

Tensor Transformer::decode_rows(const DecodeRows& rows, KvCache& cache) const {
  const int64_t n = rows.tokens.numel(), D = config_.d_model;
  const Tensor positions = rows.positions.contiguous();
  std::vector<int32_t> lengths = positions.to_vector<int32_t>();  // keys of each row's slot
  int64_t longest = 0;
  for (int32_t& l : lengths) longest = std::max<int64_t>(longest, ++l);
  const Tensor self_lengths = Tensor::from_vector(lengths, {n});
  ATTEND_CHECK(config_.positions == Positions::kSinusoidal || longest <= config_.max_positions,
               "transformer: decoding position {} exceeds model.max_positions {}", longest - 1,
               config_.max_positions);
  const Embedding& table = shared_ ? *shared_ : *decoder_embed_;
  const Tensor x0 = ops::embedding(rows.tokens.reshape({n, 1}), table.weight.value());  // [n, 1, D]
  const Tensor pos = ops::embedding(positions.reshape({n, 1}),
                                    decoder_positions_ ? decoder_positions_->weight.value()
                                                       : sinusoid_table(longest).value());
  Tensor x = ops::add(ops::affine(x0, std::sqrt(static_cast<double>(D))), pos);
  for (size_t i = 0; i < decoder_layers_.size(); ++i)
    x = decoder_layers_[i]->step(x, cache.layers[i], rows, self_lengths);
  if (decoder_norm_) x = decoder_norm_->value(x);
  return x.reshape({n, D});
}

ag::Variable Transformer::project(const ag::Variable& hidden) const {
  const int64_t D = config_.d_model;
  const ag::Variable rows = ag::reshape(hidden, {hidden.value().numel() / D, D});
  if (shared_) return ag::linear(rows, shared_->weight, ag::Variable());  // x E^T
  return output_projection_->forward(rows);
}

ag::Variable Transformer::forward(const Tensor& src, const Tensor& src_lengths,
                                  const Tensor& tgt_in, const Tensor& tgt_lengths,
                                  uint64_t stream) const {
  const ag::Variable memory = encode(src, src_lengths, stream);
  return project(decode(tgt_in, tgt_lengths, memory, src_lengths, stream));
}

}  // namespace attend::nn
