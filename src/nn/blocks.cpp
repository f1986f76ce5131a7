// Transformer blocks (see blocks.h).
#include "nn/blocks.h"

#include <algorithm>
#include <cmath>

#include "core/rng.h"
#include "nn/transformer.h"

namespace attend::nn {
namespace {
thread_local CrossAttentionProbe* tls_probe = nullptr;
}  // namespace

CrossAttentionProbe::CrossAttentionProbe() : previous_(tls_probe) { tls_probe = this; }
CrossAttentionProbe::~CrossAttentionProbe() { tls_probe = previous_; }
CrossAttentionProbe* CrossAttentionProbe::active() { return tls_probe; }

namespace {
// Each enum's values and their names, said once for parsing and naming.
template <typename E>
struct Named {
  const char* name;
  E value;
};
constexpr Named<Activation> kActivations[] = {{"relu", Activation::kRelu},
                                              {"gelu", Activation::kGelu},
                                              {"gelu_tanh", Activation::kGeluTanh},
                                              {"silu", Activation::kSilu}};
constexpr Named<Norm> kNorms[] = {{"post", Norm::kPost}, {"pre", Norm::kPre}};
constexpr Named<NormType> kNormTypes[] = {{"layer", NormType::kLayer}, {"rms", NormType::kRms}};
constexpr Named<Positions> kPositions[] = {{"sinusoidal", Positions::kSinusoidal},
                                           {"sinusoidal_halves", Positions::kSinusoidalHalves},
                                           {"learned", Positions::kLearned},
                                           {"relative", Positions::kRelative}};
constexpr Named<Arch> kArchs[] = {{"encoder_decoder", Arch::kEncoderDecoder},
                                  {"decoder_only", Arch::kDecoderOnly},
                                  {"encoder_only", Arch::kEncoderOnly}};

template <typename E, size_t N>
E parse(const Named<E> (&table)[N], const char* key, const std::string& name) {
  std::string expected;
  for (const auto& v : table) {
    if (name == v.name) return v.value;
    expected += std::string(expected.empty() ? "" : ", ") + v.name;
  }
  ATTEND_FAIL("{}: expected one of {}, got '{}'", key, expected, name);
}
template <typename E, size_t N>
const char* name_of(const Named<E> (&table)[N], E value) {
  for (const auto& v : table)
    if (v.value == value) return v.name;
  return "?";
}
}  // namespace

Activation parse_activation(const std::string& name) {
  return parse(kActivations, "model.activation", name);
}
Norm parse_norm(const std::string& name) { return parse(kNorms, "model.norm", name); }
NormType parse_norm_type(const std::string& name) {
  return parse(kNormTypes, "model.norm_type", name);
}
Positions parse_positions(const std::string& name) {
  return parse(kPositions, "model.positions", name);
}
Arch parse_arch(const std::string& name) { return parse(kArchs, "model.arch", name); }
const char* activation_name(Activation activation) { return name_of(kActivations, activation); }
const char* norm_name(Norm norm) { return name_of(kNorms, norm); }
const char* norm_type_name(NormType type) { return name_of(kNormTypes, type); }
const char* positions_name(Positions positions) { return name_of(kPositions, positions); }
const char* arch_name(Arch arch) { return name_of(kArchs, arch); }

Tensor sinusoidal_positions(int64_t n, int64_t d, bool halves) {
  ATTEND_CHECK(!halves || d % 2 == 0, "sinusoidal_halves positions need an even width, got {}",
               d);
  HeapScope heap;
  std::vector<float> p(static_cast<size_t>(n * d));
  for (int64_t pos = 0; pos < n; ++pos)
    for (int64_t i = 0; i < d; i += 2) {
      const double angle = static_cast<double>(pos) /
                           std::pow(10000.0, static_cast<double>(i) / static_cast<double>(d));
      const int64_t sin_col = halves ? i / 2 : i, cos_col = halves ? d / 2 + i / 2 : i + 1;
      p[pos * d + sin_col] = static_cast<float>(std::sin(angle));
      if (cos_col < d) p[pos * d + cos_col] = static_cast<float>(std::cos(angle));
    }
  return Tensor::from_vector(p, {n, d});
}

int32_t relative_bucket(int64_t rel, bool bidirectional, int64_t buckets, int64_t max_distance) {
  int64_t bucket = 0;
  if (bidirectional) {
    buckets /= 2;
    if (rel > 0) bucket += buckets;
    rel = rel < 0 ? -rel : rel;
  } else {
    rel = rel < 0 ? -rel : 0;
  }
  const int64_t max_exact = buckets / 2;
  if (rel < max_exact) return static_cast<int32_t>(bucket + rel);
  // float throughout, as transformers computes it (a double here could land an exact integer
  // on the other side of a bucket boundary)
  const float scaled = std::log(static_cast<float>(rel) / static_cast<float>(max_exact)) /
                       static_cast<float>(std::log(static_cast<double>(max_distance) /
                                                   static_cast<double>(max_exact))) *
                       static_cast<float>(buckets - max_exact);
  const int64_t large = std::min<int64_t>(max_exact + static_cast<int64_t>(scaled), buckets - 1);
  return static_cast<int32_t>(bucket + large);
}

uint64_t dropout_site(uint64_t stream, uint64_t layer, uint64_t where) {
  return mix_stream(stream, layer * 16 + where);
}

FeedForward::FeedForward(int64_t dim, int64_t ffn, Activation activation_, uint64_t seed,
                         const std::string& path, bool bias, bool gated)
    : fc1(dim, ffn, bias, seed, path + ".fc1"),
      fc2(ffn, dim, bias, seed, path + ".fc2"),
      activation(activation_) {
  register_module("fc1", fc1);
  register_module("fc2", fc2);
  if (gated) {
    fc_up = std::make_unique<Linear>(dim, ffn, bias, seed, path + ".fc_up");
    register_module("fc_up", *fc_up);
  }
}

ag::Variable activate(const ag::Variable& x, Activation activation) {
  switch (activation) {
    case Activation::kRelu: return ag::relu(x);
    case Activation::kGelu: return ag::gelu(x);
    case Activation::kGeluTanh: return ag::gelu_tanh(x);
    case Activation::kSilu: return ag::silu(x);
  }
  ATTEND_FAIL("unknown activation");
}

ag::Variable FeedForward::forward(const ag::Variable& x) const {
  ag::Variable h = activate(fc1.forward(x), activation);  // [.., F]
  if (fc_up) h = ag::mul(h, fc_up->forward(x));
  return fc2.forward(h);
}

TransformerLayer::TransformerLayer(const TransformerConfig& c, bool cross_attention,
                                   const AttentionConfig& self_attention, uint64_t seed,
                                   const std::string& path)
    : self_attn(c.d_model, c.heads, seed, path + ".self_attn", DType::kF32, self_attention,
                c.qkv_init_gain, c.attention_shape()),
      self_attn_layer_norm(c.d_model, c.norm_kind()),
      ffn(c.d_model, c.ffn, c.activation, seed, path, c.linear_bias, c.gated_ffn),
      final_layer_norm(c.d_model, c.norm_kind()),
      pre_norm(c.norm == Norm::kPre) {
  register_module("self_attn", self_attn);
  register_module("self_attn_layer_norm", self_attn_layer_norm);
  if (cross_attention) {
    encoder_attn = std::make_unique<MultiHeadAttention>(
        c.d_model, c.heads, seed, path + ".encoder_attn", DType::kF32, AttentionConfig{},
        c.qkv_init_gain, c.attention_shape());
    encoder_attn_layer_norm = std::make_unique<LayerNorm>(c.d_model, c.norm_kind());
    register_module("encoder_attn", *encoder_attn);
    register_module("encoder_attn_layer_norm", *encoder_attn_layer_norm);
  }
  // fc1/fc2 (and a gated layer's fc_up) sit directly in the layer (PyTorch reference names:
  // layers.i.fc1.weight).
  register_module("fc1", ffn.fc1);
  register_module("fc2", ffn.fc2);
  if (ffn.fc_up) register_module("fc_up", *ffn.fc_up);
  register_module("final_layer_norm", final_layer_norm);
}

ag::Variable TransformerLayer::forward(const ag::Variable& x, const LayerInputs& in, double p,
                                       uint64_t stream, const LayerCache* cache) const {
  Residual r(x, pre_norm);
  uint64_t where = 0;
  r.apply(
      self_attn_layer_norm,
      [&](const ag::Variable& y) {
        return self_attn.forward(y, y, in.self_mask, cache ? &cache->self : nullptr, in.self_bias);
      },
      p, kDropoutSeed, dropout_site(stream, 0, where++));
  if (encoder_attn)
    r.apply(
        *encoder_attn_layer_norm,
        [&](const ag::Variable& y) {
          if (CrossAttentionProbe* probe = CrossAttentionProbe::active(); probe && !cache)
            probe->add(encoder_attn->probabilities(y.value(), in.memory.value(), in.memory_mask));
          return encoder_attn->forward(y, in.memory, in.memory_mask,
                                       cache ? &cache->memory : nullptr);
        },
        p, kDropoutSeed, dropout_site(stream, 0, where++));
  r.apply(
      final_layer_norm, [&](const ag::Variable& y) { return ffn.forward(y); }, p, kDropoutSeed,
      dropout_site(stream, 0, where));
  return r.finish();
}

KvCache::KvCache(int64_t layers_, int64_t heads, int64_t head_dim, DType dtype, Device device)
    : layers(static_cast<size_t>(layers_)),
      heads_(heads),
      head_dim_(head_dim),
      dtype_(dtype),
      device_(device) {}

void KvCache::reserve(int64_t slots, int64_t positions, int64_t memory_slots,
                      int64_t source_positions) {
  // Grow by at least doubling, so that admitting requests one by one copies O(1) per position.
  auto grown = [](int64_t have, int64_t want) {
    return want <= have ? have : std::max(want, 2 * have);
  };
  const int64_t S = grown(slots_, slots), P = grown(positions_, positions);
  const int64_t M = grown(memory_slots_, memory_slots),
                L = grown(source_positions_, source_positions);
  HeapScope heap;  // the cache outlives every step's arena
  auto regrow = [&](Tensor& t, int64_t rows, int64_t cap, int64_t old_rows) {
    // Zeroed: a prompt read in one pass (Stack::prefill) runs attention's tiled path, whose
    // products read whole tiles of values, masked keys' included (with probability 0, which
    // would still turn uninitialised NaN bits into NaN).
    Tensor bigger = Tensor::zeros({rows, heads_, cap, head_dim_}, dtype_, device_);
    if (t.defined() && old_rows > 0)  // keep the contents: old slot r -> slot r, positions 0..
      ops::write_positions(bigger, t, ops::iota({old_rows}, device_),
                           Tensor::zeros({old_rows}, DType::kI32, device_));
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

Stack::Stack(const TransformerConfig& c, const Options& o, const Embedding* shared,
             ag::Variable sinusoid, uint64_t seed, const std::string& name)
    : o_(o),
      d_model_(c.d_model),
      heads_(c.heads),
      head_dim_(c.attention_shape().head_dim),
      max_positions_(c.max_positions),
      learned_positions_(c.positions == Positions::kLearned),
      halves_(c.positions == Positions::kSinusoidalHalves),
      scale_embeddings_(c.scale_embeddings),
      relative_buckets_(c.relative_buckets),
      relative_max_distance_(c.relative_max_distance),
      shared_(shared),
      sinusoid_(std::move(sinusoid)) {
  if (!shared_) {
    own_tokens_ = std::make_unique<Embedding>(o.vocab, c.d_model, seed, name + ".embed_tokens");
    register_module("embed_tokens", *own_tokens_);
  }
  if (learned_positions_) {
    positions_ =
        std::make_unique<Embedding>(c.max_positions, c.d_model, seed, name + ".embed_positions");
    register_module("embed_positions", *positions_);
  } else if (c.positions == Positions::kRelative) {
    relative_ = std::make_unique<Embedding>(c.relative_buckets, c.heads, seed,
                                            name + ".relative_attention_bias");
    register_module("relative_attention_bias", *relative_);
  } else {
    ATTEND_CHECK(sinusoid_.defined(), "{}: sinusoidal positions need the model's table", name);
  }
  if (c.embed_norm) {
    embed_norm_ = std::make_unique<LayerNorm>(c.d_model, c.norm_kind());
    register_module("embed_layer_norm", *embed_norm_);
  }
  for (int64_t i = 0; i < o.layers; ++i) {
    const std::string layer = "layers." + std::to_string(i);
    layers_.push_back(std::make_unique<TransformerLayer>(c, o.cross_attention, o.attention, seed,
                                                         name + "." + layer));
    register_module(layer, *layers_.back());
  }
  if (c.norm == Norm::kPre) {
    final_norm_ = std::make_unique<LayerNorm>(c.d_model, c.norm_kind());
    register_module("layer_norm", *final_norm_);
  }
}

ag::Variable Stack::relative_bias(int64_t Tq, int64_t Tk) const {
  const int64_t span = std::max<int64_t>(Tq + Tk - 1, 0);
  std::vector<int32_t> buckets(static_cast<size_t>(span));
  for (int64_t r = 0; r < span; ++r)  // offset r holds key - query = r - (Tq - 1)
    buckets[static_cast<size_t>(r)] =
        relative_bucket(r - (Tq - 1), !o_.causal, relative_buckets_, relative_max_distance_);
  const Tensor ids = Tensor::from_vector(buckets, {span}).to(device());
  return ag::transpose(relative_->forward(ids), 0, 1);  // [span, H] -> [H, span]
}

Tensor Stack::relative_bias_rows(const Tensor& positions, int64_t Tk) const {
  ATTEND_CHECK(positions.device().is_cpu(),
               "decode step: relative positions are computed on the CPU (got positions on {})",
               positions.device().str());
  const int64_t n = positions.numel();
  const int32_t* pos = positions.data<int32_t>();
  // Every row's key - query offsets lie in [-last, Tk): their buckets once, then each row a
  // slice of them.
  const int64_t last = n > 0 ? *std::max_element(pos, pos + n) : 0;
  std::vector<int32_t> by_offset(static_cast<size_t>(last + Tk));
  for (int64_t r = -last; r < Tk; ++r)
    by_offset[static_cast<size_t>(r + last)] =
        relative_bucket(r, !o_.causal, relative_buckets_, relative_max_distance_);
  std::vector<int32_t> buckets(static_cast<size_t>(n * Tk));
  for (int64_t b = 0; b < n; ++b)
    std::copy_n(by_offset.begin() + (last - pos[b]), Tk, buckets.begin() + b * Tk);
  const Tensor ids = Tensor::from_vector(buckets, {n, Tk});
  return relative_->forward(ids).value().transpose(1, 2).contiguous();  // [n, H, Tk]
}

ag::Variable Stack::sinusoid_table(int64_t n) const {
  if (sinusoid_.shape()[0] >= n) return sinusoid_;
  HeapScope heap;
  return ag::Variable(
      sinusoidal_positions(n, d_model_, halves_).to(device()));  // past max_positions
}

Tensor Stack::positions(const Tensor& ids) const {
  const int64_t T = ids.size(1);
  ATTEND_CHECK(T <= max_positions_ || !learned_positions_,
               "transformer: sequence of {} tokens exceeds model.max_positions {}", T,
               max_positions_);
  return ops::iota(ids.shape(), ids.device());
}

ag::Variable Stack::embed(const Tensor& ids, const Tensor& positions, int64_t span, double p,
                          uint64_t stream) const {
  const ag::Variable tokens_x = tokens().forward(ids);
  ag::Variable x =
      scale_embeddings_ ? ag::affine(tokens_x, std::sqrt(static_cast<double>(d_model_))) : tokens_x;
  if (learned_positions_)
    x = ag::add(x, positions_->forward(positions));
  else if (!relative_)  // relative positions enter the attention scores instead
    x = ag::add(x, ag::embedding(positions, compute(sinusoid_table(span))));
  if (embed_norm_) x = embed_norm_->forward(x);
  return ag::dropout(x, p, kDropoutSeed, stream);
}

ag::Variable Stack::run(ag::Variable x, const LayerInputs& in, double p, uint64_t stream,
                        const std::vector<LayerCache>* caches) const {
  for (size_t i = 0; i < layers_.size(); ++i)
    x = layers_[i]->forward(x, in, p, dropout_site(stream, o_.first_layer_site + i, 0),
                            caches ? &(*caches)[i] : nullptr);
  if (final_norm_) x = final_norm_->forward(x);
  return x;
}

ag::Variable Stack::forward(const Tensor& ids, const Tensor& lengths, const ag::Variable& memory,
                            const Tensor& memory_lengths, double p, uint64_t stream) const {
  const int64_t T = ids.size(1);
  ag::Variable x =
      embed(ids, positions(ids), T, p, dropout_site(stream, o_.embed_site, 0));
  LayerInputs in;
  in.self_mask.key_lengths = lengths;
  in.self_mask.causal = o_.causal;
  if (relative_) in.self_bias = relative_bias(T, T);
  in.memory = memory;
  in.memory_mask.key_lengths = memory_lengths;
  return run(x, in, p, stream, nullptr);
}

Tensor Stack::step(const DecodeRows& rows, KvCache& cache) const {
  const int64_t n = rows.tokens.numel();
  const Tensor positions = rows.positions.contiguous();
  const int64_t longest = rows.span;
  ATTEND_CHECK(longest >= 1, "decode step: span {} must be >= 1 (1 + the largest position)",
               longest);
  ATTEND_CHECK(!learned_positions_ || longest <= max_positions_,
               "transformer: decoding position {} exceeds model.max_positions {}", longest - 1,
               max_positions_);
  std::vector<LayerCache> caches(layers_.size());
  const Tensor self_lengths = ops::add_index(positions, 1);  // keys of each row's slot
  for (size_t i = 0; i < layers_.size(); ++i) {
    LayerKv& kv = cache.layers[i];
    caches[i].self = {kv.self_k, kv.self_v, rows.self_slots, self_lengths, rows.positions};
    if (layers_[i]->has_cross_attention())
      caches[i].memory = {kv.memory_k, kv.memory_v, rows.memory_slots, rows.source_lengths, {}};
  }
  const ag::Variable x =
      embed(rows.tokens.reshape({n, 1}), positions.reshape({n, 1}), longest, 0.0, 0);  // [n, 1, D]
  LayerInputs in;
  if (relative_) in.self_bias = ag::Variable(relative_bias_rows(positions, cache.positions()));
  return run(x, in, 0.0, 0, &caches).value().reshape({n, d_model_});
}

Tensor Stack::prefill(const Tensor& ids, const Tensor& lengths, const Tensor& slots,
                      KvCache& cache) const {
  ATTEND_CHECK(o_.causal && !o_.cross_attention,
               "prefill: only a causal stack without encoder attention reads prompts");
  ATTEND_CHECK(ids.dim() == 2 && ids.dtype() == DType::kI32, "prefill: expected i32 ids [B, T]");
  const int64_t B = ids.size(0), T = ids.size(1);
  ATTEND_CHECK(lengths.numel() == B && slots.numel() == B,
               "prefill: {} rows of ids but {} lengths and {} slots", B, lengths.numel(),
               slots.numel());
  ATTEND_CHECK(T <= cache.positions(), "prefill: {} positions for a cache of {}", T,
               cache.positions());
  const Tensor pos = positions(ids);
  const Tensor zeros = Tensor::zeros({B}, DType::kI32, ids.device());
  std::vector<LayerCache> caches(layers_.size());
  for (size_t i = 0; i < layers_.size(); ++i)
    caches[i].self = {cache.layers[i].self_k, cache.layers[i].self_v, slots, lengths, zeros};
  LayerInputs in;
  in.self_mask.causal = true;  // position t of a row sees its positions 0..t
  if (relative_) in.self_bias = relative_bias(T, cache.positions());
  return run(embed(ids, pos, T, 0.0, 0), in, 0.0, 0, &caches).value();
}

void Stack::write_memory(const Tensor& memory, const Tensor& slots, KvCache& cache) const {
  const int64_t B = memory.size(0), S = memory.size(1);
  ATTEND_CHECK(S <= cache.source_positions(), "write_memory: {} source positions for a cache of {}",
               S, cache.source_positions());
  const Tensor zeros = Tensor::zeros({B}, DType::kI32, memory.device());
  for (size_t i = 0; i < layers_.size(); ++i) {
    ATTEND_CHECK(layers_[i]->has_cross_attention(),
                 "write_memory: a stack without encoder attention");
    const auto [k, v] = layers_[i]->encoder_attn->project_kv(memory);  // [B, H, S, Dh]
    ops::write_positions(cache.layers[i].memory_k, k, slots, zeros);
    ops::write_positions(cache.layers[i].memory_v, v, slots, zeros);
  }
}

KvCache Stack::make_cache() const {
  return KvCache(num_layers(), heads_, head_dim_, compute_dtype(), device());
}

}  // namespace attend::nn
