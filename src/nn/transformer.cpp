// The Transformer families (see transformer.h).
#include "nn/transformer.h"

#include <cmath>

namespace attend::nn {

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
  } else if (name == "gpt-tiny" || name == "gpt2-small") {
    // GPT-2's layout: pre-norm with a final layer norm, GELU, learned positions, tied embeddings
    c.arch = Arch::kDecoderOnly;
    c.norm = Norm::kPre;
    c.activation = Activation::kGelu;
    c.positions = Positions::kLearned;
    if (name == "gpt-tiny") {  // CPU-sized
      c.d_model = 256, c.ffn = 1024, c.heads = 4, c.decoder_layers = 4, c.max_positions = 256;
    } else {  // GPT-2 small, 124M parameters with its 50,257-token vocabulary
      c.d_model = 768, c.ffn = 3072, c.heads = 12, c.decoder_layers = 12, c.max_positions = 1024;
    }
    c.encoder_layers = 0;
  } else {
    ATTEND_FAIL("model.preset: unknown preset '{}' (expected base, big, small, tiny, gpt-tiny or "
                "gpt2-small)", name);
  }
  return c;
}

void TransformerConfig::validate() const {
  const bool encoder = arch != Arch::kDecoderOnly, decoder = arch != Arch::kEncoderOnly;
  const int64_t vocab = arch == Arch::kDecoderOnly   ? tgt_vocab
                        : arch == Arch::kEncoderOnly ? src_vocab
                                                     : std::min(src_vocab, tgt_vocab);
  ATTEND_CHECK(vocab > 0, "model: vocabulary sizes must be > 0 (got {} and {})", src_vocab,
               tgt_vocab);
  ATTEND_CHECK(d_model > 0 && ffn > 0, "model.d_model and model.ffn must be > 0 (got {} and {})",
               d_model, ffn);
  ATTEND_CHECK(head_dim >= 0, "model.head_dim: expected >= 0 (0: d_model / heads), got {}",
               head_dim);
  ATTEND_CHECK(heads > 0 && (head_dim > 0 || d_model % heads == 0),
               "model.heads: d_model {} is not divisible by {} heads (or set model.head_dim)",
               d_model, heads);
  ATTEND_CHECK(positions != Positions::kRelative ||
                   (relative_buckets >= 4 && relative_max_distance > relative_buckets / 2),
               "model.relative_buckets {} and model.relative_max_distance {}: expected >= 4 "
               "buckets and a distance above half of them",
               relative_buckets, relative_max_distance);
  ATTEND_CHECK(output_scale > 0 && std::isfinite(output_scale),
               "model.output_scale: expected a finite value > 0, got {}", output_scale);
  ATTEND_CHECK(!encoder || encoder_layers >= 1, "model.encoder_layers must be >= 1 (got {})",
               encoder_layers);
  ATTEND_CHECK(!decoder || decoder_layers >= 1, "model.decoder_layers must be >= 1 (got {})",
               decoder_layers);
  ATTEND_CHECK(dropout >= 0 && dropout < 1, "model.dropout: expected [0, 1), got {}", dropout);
  ATTEND_CHECK(qkv_init_gain > 0 && std::isfinite(qkv_init_gain),
               "model.qkv_init_gain: expected a finite value > 0, got {}", qkv_init_gain);
  ATTEND_CHECK(!mlm_head || arch == Arch::kEncoderOnly,
               "model.mlm_head: only an encoder-only model has a masked-LM head");
  ATTEND_CHECK(norm_eps > 0 && std::isfinite(norm_eps),
               "model.norm_eps: expected a finite value > 0, got {}", norm_eps);
  ATTEND_CHECK(max_positions >= 1, "model.max_positions: expected >= 1, got {}", max_positions);
  ATTEND_CHECK(arch != Arch::kEncoderDecoder || !share_embeddings || src_vocab == tgt_vocab,
               "model.share_embeddings needs one joint vocabulary (source {} != target {})",
               src_vocab, tgt_vocab);
  for (const int32_t id : {pad_id, unk_id, bos_id, eos_id})
    ATTEND_CHECK(id >= 0 && id < vocab, "model: special id {} outside the vocabulary of {}", id,
                 vocab);
  attention.validate();
}

namespace {

void check_ids(const char* what, const Tensor& ids) {
  ATTEND_CHECK(ids.dim() == 2 && ids.dtype() == DType::kI32, "{}: expected i32 ids [B, T], got {}",
               what, ids.str());
}

}  // namespace

Model::Model(const TransformerConfig& config, Arch arch, int64_t vocab, uint64_t seed)
    : config_(config) {
  ATTEND_CHECK(config_.arch == arch, "model.arch: a {} model cannot be built from a {} config",
               arch_name(arch), arch_name(config_.arch));
  config_.validate();
  const TransformerConfig& c = config_;
  if (c.share_embeddings) {
    shared_ = std::make_unique<Embedding>(vocab, c.d_model, seed, "embed_tokens");
    register_module("embed_tokens", *shared_);
  } else {
    output_projection_ =
        std::make_unique<Linear>(c.d_model, vocab, false, seed, "output_projection");
  }
  if (c.positions == Positions::kSinusoidal || c.positions == Positions::kSinusoidalHalves)
    sinusoid_ = register_constant(
        ag::Variable(sinusoidal_positions(std::max<int64_t>(c.max_positions, 256), c.d_model,
                                          c.positions == Positions::kSinusoidalHalves)));
  if (c.logits_bias) output_bias_ = ag::Variable(Tensor::zeros({vocab}, DType::kF32));
}

void Model::finish() {
  if (output_projection_) register_module("output_projection", *output_projection_);
  if (output_bias_.defined()) output_bias_ = register_parameter("output_bias", output_bias_.value());
}

ag::Variable Model::project(const ag::Variable& hidden) const {
  const int64_t D = config_.d_model;
  ag::Variable rows = ag::reshape(hidden, {hidden.value().numel() / D, D});
  if (config_.output_scale != 1.0) rows = ag::affine(rows, config_.output_scale);
  const ag::Variable logits =
      tied_scale_.defined()  // int8 inference: no tape
          ? ag::Variable(ops::linear_int8(rows.value(), tied_q_.value(), tied_scale_.value()))
      : shared_ ? ag::linear(rows, shared_->compute(shared_->weight), ag::Variable())
                : output_projection_->forward(rows);
  return output_bias_.defined() ? ag::bias_add(logits, compute(output_bias_)) : logits;
}

void Model::store_own_weights(DType dtype) {
  Module::store_own_weights(dtype);
  if (dtype != DType::kI8 || !shared_) return;
  ops::QuantizedRows q = ops::quantize_rows(shared_->weight.value());
  tied_q_ = register_parameter("output_projection.weight", std::move(q.q));
  tied_scale_ = register_parameter("output_projection.weight_scale", std::move(q.scales));
}

EncoderDecoder::EncoderDecoder(const TransformerConfig& config, uint64_t seed)
    : Model(config, Arch::kEncoderDecoder, config.tgt_vocab, seed) {
  const TransformerConfig& c = config_;
  Stack::Options enc;
  enc.layers = c.encoder_layers, enc.vocab = c.src_vocab, enc.attention = c.attention;
  enc.embed_site = 1000, enc.first_layer_site = 1;
  encoder_ = std::make_unique<Stack>(c, enc, shared(), sinusoid(), seed, "encoder");
  Stack::Options dec;
  dec.layers = c.decoder_layers, dec.vocab = c.tgt_vocab, dec.causal = true;
  dec.cross_attention = true, dec.embed_site = 2000, dec.first_layer_site = 2001;
  decoder_ = std::make_unique<Stack>(c, dec, shared(), sinusoid(), seed, "decoder");
  register_module("encoder", *encoder_);
  register_module("decoder", *decoder_);
  finish();
}
ag::Variable EncoderDecoder::encode(const Tensor& src, const Tensor& src_lengths,
                                    uint64_t stream) const {
  check_ids("transformer.encode: source", src);
  return encoder_->forward(src, src_lengths, {}, {}, active_dropout(), stream);
}

ag::Variable EncoderDecoder::decode(const Tensor& tgt_in, const Tensor& tgt_lengths,
                                    const ag::Variable& memory, const Tensor& src_lengths,
                                    uint64_t stream) const {
  check_ids("transformer.decode: target", tgt_in);
  return decoder_->forward(tgt_in, tgt_lengths, memory, src_lengths, active_dropout(), stream);
}

KvCache EncoderDecoder::make_cache() const { return decoder_->make_cache(); }

void EncoderDecoder::write_memory(const Tensor& memory, const Tensor& slots, KvCache& cache) const {
  decoder_->write_memory(memory, slots, cache);
}

Tensor EncoderDecoder::decode_rows(const DecodeRows& rows, KvCache& cache) const {
  return decoder_->step(rows, cache);
}

ag::Variable EncoderDecoder::forward(const Tensor& src, const Tensor& src_lengths,
                                     const Tensor& tgt_in, const Tensor& tgt_lengths,
                                     uint64_t stream) const {
  const ag::Variable memory = encode(src, src_lengths, stream);
  return project(decode(tgt_in, tgt_lengths, memory, src_lengths, stream));
}

DecoderOnly::DecoderOnly(const TransformerConfig& config, uint64_t seed)
    : Model(config, Arch::kDecoderOnly, config.tgt_vocab, seed) {
  const TransformerConfig& c = config_;
  Stack::Options o;
  o.layers = c.decoder_layers, o.vocab = c.tgt_vocab, o.causal = true;
  o.embed_site = 2000, o.first_layer_site = 2001;
  decoder_ = std::make_unique<Stack>(c, o, shared(), sinusoid(), seed, "decoder");
  register_module("decoder", *decoder_);
  finish();
}

ag::Variable DecoderOnly::hidden(const Tensor& ids, const Tensor& lengths, uint64_t stream) const {
  check_ids("decoder_only", ids);
  return decoder_->forward(ids, lengths, {}, {}, active_dropout(), stream);
}

ag::Variable DecoderOnly::forward(const Tensor& ids, const Tensor& lengths, uint64_t stream) const {
  return project(hidden(ids, lengths, stream));
}

Tensor DecoderOnly::decode_rows(const DecodeRows& rows, KvCache& cache) const {
  return decoder_->step(rows, cache);
}

EncoderOnly::EncoderOnly(const TransformerConfig& config, uint64_t seed)
    : Model(config, Arch::kEncoderOnly, config.src_vocab, seed) {
  const TransformerConfig& c = config_;
  Stack::Options o;
  o.layers = c.encoder_layers, o.vocab = c.src_vocab, o.attention = c.attention;
  o.embed_site = 1000, o.first_layer_site = 1;
  encoder_ = std::make_unique<Stack>(c, o, shared(), sinusoid(), seed, "encoder");
  register_module("encoder", *encoder_);
  if (c.mlm_head) {
    head_dense_ = std::make_unique<Linear>(c.d_model, c.d_model, true, seed, "lm_head_dense");
    head_norm_ = std::make_unique<LayerNorm>(c.d_model, c.norm_kind());
    register_module("lm_head_dense", *head_dense_);
    register_module("lm_head_layer_norm", *head_norm_);
  }
  finish();
}

ag::Variable EncoderOnly::encode(const Tensor& ids, const Tensor& lengths, uint64_t stream) const {
  check_ids("encoder_only", ids);
  return encoder_->forward(ids, lengths, {}, {}, active_dropout(), stream);
}

ag::Variable EncoderOnly::forward(const Tensor& ids, const Tensor& lengths, uint64_t stream) const {
  ag::Variable h = encode(ids, lengths, stream);
  if (head_dense_) h = head_norm_->forward(activate(head_dense_->forward(h), config_.activation));
  return project(h);
}

}  // namespace attend::nn
