// Basic layers (see layers.h).
#include "nn/layers.h"

#include <cmath>

namespace attend::nn {

Linear::Linear(int64_t in, int64_t out, bool with_bias, uint64_t seed, const std::string& path,
               DType dtype, double gain) {
  HeapScope heap;
  Tensor w = Tensor::empty({out, in}, dtype);
  init_uniform(w, gain * std::sqrt(6.0 / static_cast<double>(in + out)), seed,
               name_stream(path + ".weight"));
  weight = register_parameter("weight", w);
  if (with_bias) bias = register_parameter("bias", Tensor::zeros({out}, dtype));
}

ag::Variable Linear::forward(const ag::Variable& x) const {
  if (weight_scale.defined())  // int8 inference: no tape
    return ag::Variable(ops::linear_int8(x.value(), weight.value(), weight_scale.value(),
                                         bias.defined() ? bias.value() : Tensor()));
  return ag::linear(x, compute(weight), compute(bias));
}

void Linear::store_own_weights(DType dtype) {
  if (dtype != DType::kI8) {
    Module::store_own_weights(dtype);
    return;
  }
  ops::QuantizedRows q = ops::quantize_rows(weight.value());
  weight.mutable_value() = std::move(q.q);
  weight_scale = register_parameter("weight_scale", std::move(q.scales));
}

Embedding::Embedding(int64_t vocab, int64_t dim, uint64_t seed, const std::string& path,
                     DType dtype) {
  HeapScope heap;
  Tensor w = Tensor::empty({vocab, dim}, dtype);
  init_normal(w, 1.0 / std::sqrt(static_cast<double>(dim)), seed, name_stream(path + ".weight"));
  weight = register_parameter("weight", w);
}

ag::Variable Embedding::forward(const Tensor& ids) const {
  return ag::embedding(ids, compute(weight));
}

LayerNorm::LayerNorm(int64_t dim, NormKind kind, DType dtype) : eps(kind.eps), rms(kind.rms) {
  HeapScope heap;
  weight = register_parameter("weight", Tensor::full({dim}, 1.0, dtype));
  if (!rms) bias = register_parameter("bias", Tensor::zeros({dim}, dtype));
}

ag::Variable LayerNorm::forward(const ag::Variable& x, const ag::Variable& residual,
                                ag::Variable* sum_out) const {
  if (rms) return ag::rms_norm(x, residual, compute(weight), eps, sum_out);
  return ag::layer_norm(x, residual, compute(weight), compute(bias), eps, sum_out);
}

void Residual::apply(const LayerNorm& ln, const std::function<ag::Variable(const ag::Variable&)>& f,
                     double p, uint64_t seed, uint64_t stream) {
  if (!pre_norm_) {
    x_ = ln.forward(ag::dropout(f(x_), p, seed, stream), x_);
    return;
  }
  ag::Variable in;
  if (pending_.defined()) {  // LN(x + pending), keeping x + pending as the stream
    ag::Variable sum;
    in = ln.forward(pending_, x_, &sum);
    x_ = sum;
  } else {
    in = ln.forward(x_);
  }
  pending_ = ag::dropout(f(in), p, seed, stream);
}

ag::Variable Residual::finish() const { return pending_.defined() ? ag::add(x_, pending_) : x_; }

AttentionKind parse_attention_kind(const std::string& name) {
  if (name == "full") return AttentionKind::kFull;
  if (name == "local") return AttentionKind::kLocal;
  ATTEND_FAIL("model.attention: expected 'full' or 'local', got '{}'", name);
}

void AttentionConfig::validate() const {
  if (kind == AttentionKind::kLocal)
    ATTEND_CHECK(window > 0, "window: local attention needs window > 0, got {}", window);
  ATTEND_CHECK(global_tokens >= 0, "global_tokens: must be >= 0, got {}", global_tokens);
}

ops::AttentionMask AttentionConfig::apply(ops::AttentionMask mask) const {
  if (kind == AttentionKind::kLocal) {
    mask.local = true;
    mask.window = window;
    mask.global_tokens = global_tokens;
  }
  return mask;
}

MultiHeadAttention::MultiHeadAttention(int64_t dim_, int64_t heads_, uint64_t seed,
                                       const std::string& path, DType dtype,
                                       AttentionConfig config_, double qkv_gain,
                                       AttentionShape shape)
    : dim(dim_),
      heads(heads_),
      head_dim(shape.head_dim > 0 ? shape.head_dim
               : heads_ > 0       ? dim_ / heads_
                                  : 0),
      scale(shape.scaled ? 1.0 / std::sqrt(static_cast<double>(head_dim)) : 1.0),
      config(std::move(config_)),
      q_proj(dim_, heads_ * head_dim, shape.bias, seed, path + ".q_proj", dtype, qkv_gain),
      k_proj(dim_, heads_ * head_dim, shape.bias, seed, path + ".k_proj", dtype, qkv_gain),
      v_proj(dim_, heads_ * head_dim, shape.bias, seed, path + ".v_proj", dtype, qkv_gain),
      out_proj(heads_ * head_dim, dim_, shape.bias, seed, path + ".out_proj", dtype) {
  ATTEND_CHECK(heads_ > 0 && (shape.head_dim > 0 || dim_ % heads_ == 0),
               "MultiHeadAttention: model width {} is not divisible by {} heads", dim_, heads_);
  config.validate();
  register_module("q_proj", q_proj);
  register_module("k_proj", k_proj);
  register_module("v_proj", v_proj);
  register_module("out_proj", out_proj);
}

ag::Variable MultiHeadAttention::forward(const ag::Variable& query, const ag::Variable& memory,
                                         const ops::AttentionMask& mask, const KvView* cache,
                                         const ag::Variable& bias) const {
  if (cache) {
    if (cache->write_at.defined()) {            // this step's keys/values join the cache first
      auto [k, v] = project_kv(query.value());  // [n, H, T, Dh]
      Tensor ck = cache->k, cv = cache->v;      // handles on the cache's storage
      ops::write_positions(ck, k, cache->slots, cache->write_at);
      ops::write_positions(cv, v, cache->slots, cache->write_at);
    }
    // Row i sees its slot's first lengths[i] keys; several query positions per row (a prompt
    // read in one pass) are causal when the mask says so.
    ops::AttentionMask m;
    m.key_lengths = cache->lengths;
    m.causal = mask.causal;
    m.query_offset = mask.query_offset;
    return ag::Variable(attend_cached(query.value(), cache->k, cache->v, m, cache->slots,
                                      bias.defined() ? bias.value() : Tensor()));
  }
  const int64_t B = query.shape()[0], Tq = query.shape()[1], Tk = memory.shape()[1];
  const int64_t Dh = head_dim;
  auto split = [&](const ag::Variable& x, int64_t T) {  // [B, T, D] -> [B, H, T, Dh]
    return ag::transpose(ag::reshape(x, {B, T, heads, Dh}), 1, 2);
  };
  const ag::Variable q = split(q_proj.forward(query), Tq);
  const ag::Variable k = split(k_proj.forward(memory), Tk);
  const ag::Variable v = split(v_proj.forward(memory), Tk);
  const ag::Variable o = ag::attention(q, k, v, config.apply(mask), scale, bias);
  // [B, H, Tq, Dh] -> [B, Tq, H, Dh] -> [B, Tq, H * Dh]
  return out_proj.forward(ag::reshape(ag::transpose(o, 1, 2), {B, Tq, heads * Dh}));
}

std::pair<Tensor, Tensor> MultiHeadAttention::project_kv(const Tensor& memory) const {
  const int64_t B = memory.size(0), Tk = memory.size(1), Dh = head_dim;
  auto split = [&](const Linear& proj) {  // [B, Tk, D] -> [B, H, Tk, Dh]
    return proj.forward(ag::Variable(memory))
        .value()
        .reshape({B, Tk, heads, Dh})
        .transpose(1, 2)
        .contiguous();
  };
  return {split(k_proj), split(v_proj)};
}

Tensor MultiHeadAttention::project_query(const Tensor& query) const {
  const int64_t B = query.size(0), Tq = query.size(1), Dh = head_dim;
  return q_proj
      .forward(ag::Variable(query))  // [B, Tq, D] -> [B, H, Tq, Dh]
      .value()
      .reshape({B, Tq, heads, Dh})
      .transpose(1, 2)
      .contiguous();
}

Tensor MultiHeadAttention::attend_cached(const Tensor& query, const Tensor& k, const Tensor& v,
                                         const ops::AttentionMask& mask, const Tensor& kv_rows,
                                         const Tensor& bias) const {
  const int64_t B = query.size(0), Tq = query.size(1);
  const Tensor q = project_query(query);
  const Tensor o = ops::attention(q, k, v, config.apply(mask), scale, kv_rows, bias).out;
  return out_proj.forward(ag::Variable(o.transpose(1, 2).reshape({B, Tq, heads * head_dim})))
      .value();
}

Tensor MultiHeadAttention::probabilities(const Tensor& query, const Tensor& memory,
                                         const ops::AttentionMask& mask, const Tensor& bias) const {
  const Tensor q = project_query(query);
  const auto [k, v] = project_kv(memory);
  return ops::attention_reference(q, k, v, config.apply(mask), scale, bias).probs;
}

}  // namespace attend::nn
