// Basic layers: Linear, Embedding, LayerNorm and MultiHeadAttention, written as explicit
// forward programs over autograd ops (backward comes from the tape). Shapes in comments.
#pragma once
#include <functional>

#include "autograd/functions.h"
#include "nn/module.h"

namespace attend::nn {

/// y = x W^T + b; W [out, in] (PyTorch layout), Xavier-uniform initialised (bound
/// gain * sqrt(6 / (in + out))), b zeros.
class Linear : public Module {
 public:
  Linear(int64_t in, int64_t out, bool bias, uint64_t seed, const std::string& path,
         DType dtype = DType::kF32, double gain = 1.0);
  ag::Variable forward(const ag::Variable& x) const;  // [..., in] -> [..., out]
  ag::Variable weight, bias;
  ag::Variable weight_scale;  // int8 weights only (store_weights(kI8)): f32 [out]

 protected:
  void store_own_weights(DType dtype) override;
};

/// Token embedding table [V, D], N(0, D^-1/2) initialised (the shared-embedding convention).
class Embedding : public Module {
 public:
  Embedding(int64_t vocab, int64_t dim, uint64_t seed, const std::string& path,
            DType dtype = DType::kF32);
  ag::Variable forward(const Tensor& ids) const;  // i32 [...] -> [..., D]
  ag::Variable weight;
};

/// Which norm a model uses: layer norm, or RMSNorm (rms), and its epsilon
/// (TransformerConfig::norm_kind gives the model's).
struct NormKind {
  double eps = 1e-5;
  bool rms = false;
};

/// Layer norm (weight and bias), or with kind.rms RMSNorm (T5's: no centring, weight only).
class LayerNorm : public Module {
 public:
  explicit LayerNorm(int64_t dim, NormKind kind = {}, DType dtype = DType::kF32);
  /// LayerNorm(x + residual); residual may be undefined.
  /// `sum_out`, when given, receives x + residual (the pre-norm residual stream).
  ag::Variable forward(const ag::Variable& x, const ag::Variable& residual = {},
                       ag::Variable* sum_out = nullptr) const;
  ag::Variable weight, bias;  // bias undefined for RMSNorm
  double eps;
  bool rms;
};

/// The residual and layer-norm pattern around every sublayer of a Transformer layer, written
/// once for every layer kind (encoder, decoder, the demo's encoder):
///   post-norm (the paper): x <- LN(x + dropout(f(x)))
///   pre-norm:              x <- x + dropout(f(LN(x)))
/// Pre-norm fuses each addition into the next sublayer's layer norm (ops::layer_norm with a
/// residual returns the sum too); finish() adds the last sublayer's output.
class Residual {
 public:
  Residual(ag::Variable x, bool pre_norm) : x_(std::move(x)), pre_norm_(pre_norm) {}
  /// One sublayer: f under layer norm `ln`, then dropout p (Philox seed, stream) on its output.
  void apply(const LayerNorm& ln, const std::function<ag::Variable(const ag::Variable&)>& f,
             double p, uint64_t seed, uint64_t stream);
  /// The stream after the last sublayer.
  ag::Variable finish() const;

 private:
  ag::Variable x_;        // the residual stream
  ag::Variable pending_;  // pre-norm: the last sublayer's output, not yet added into x_
  bool pre_norm_;
};

/// Which attention a model uses (config keys `attention`, `window`, `global_tokens`):
/// kFull ("full") — exact attention over every visible key (the fused kernel);
/// kLocal ("local") — each position sees `window` keys on each side (only backwards under a
/// causal mask), and the first `global_tokens` positions attend to and are attended by all.
enum class AttentionKind { kFull, kLocal };
/// "full" or "local"; anything else throws naming model.attention.
AttentionKind parse_attention_kind(const std::string& name);

struct AttentionConfig {
  AttentionKind kind = AttentionKind::kFull;
  int64_t window = 0;
  int64_t global_tokens = 0;
  /// Throws attend::Error naming the offending key: unknown kind, window <= 0 for local,
  /// negative global_tokens.
  void validate() const;
  /// Adds the local-attention fields to a mask (padding and causality stay as given).
  ops::AttentionMask apply(ops::AttentionMask mask) const;
};

/// What one attention sublayer reads from (and writes into) the cache in a decoding step.
struct KvView {
  Tensor k, v;      // [slots, H, capacity, Dh]
  Tensor slots;     // i32 [n]: query row i uses slot slots[i]
  Tensor lengths;   // i32 [n]: row i attends to the first lengths[i] positions of its slot
  Tensor write_at;  // i32 [n]: row i's new keys/values go to position write_at[i] of its slot;
                    // undefined: read only (the encoder's keys, written once per sentence)
};

/// The shape of an attention sublayer's projections: the head width (0: dim / heads; T5 may
/// have heads * head_dim != dim), whether the four projections have biases, and whether the
/// scores are scaled by 1 / sqrt(head width) (the paper) or not (T5).
struct AttentionShape {
  int64_t head_dim = 0;
  bool bias = true;
  bool scaled = true;
};

/// Multi-head scaled dot-product attention with q/k/v/out projections (q_proj, k_proj, v_proj,
/// out_proj, as PyTorch reference implementations name them). q/k/v are initialised with
/// Xavier gain `qkv_gain` (1/sqrt(2) is the convention of implementations that once fused
/// the three into one [3D, D] matrix); out_proj with gain 1.
class MultiHeadAttention : public Module {
 public:
  MultiHeadAttention(int64_t dim, int64_t heads, uint64_t seed, const std::string& path,
                     DType dtype = DType::kF32, AttentionConfig config = {}, double qkv_gain = 1.0,
                     AttentionShape shape = {});
  /// query [B, Tq, D], memory [B, Tk, D] (== query for self-attention) -> [B, Tq, D].
  /// With `cache` (inference, no tape): memory is unused; when cache->write_at is defined the
  /// keys/values of `query` are written into the cache first (self-attention), then the query
  /// attends over the cache: query [n, T, D], row i sees the first cache->lengths[i] keys of
  /// its slot; of `mask` only causal and query_offset are read (T > 1: a prompt's positions
  /// written and read in one pass). `bias`: a relative-position score bias (ops::attention;
  /// undefined: none), with a cache one [n, H, span] row per query row.
  ag::Variable forward(const ag::Variable& query, const ag::Variable& memory,
                       const ops::AttentionMask& mask, const KvView* cache = nullptr,
                       const ag::Variable& bias = {}) const;
  /// Keys and values of `memory` [B, Tk, D] split into heads: k, v [B, H, Tk, Dh] (inference:
  /// the encoder-attention cache, or one new position of the self-attention cache).
  std::pair<Tensor, Tensor> project_kv(const Tensor& memory) const;
  /// Attention of query [B, Tq, D] over given keys/values [B, H, Tk, Dh] -> [B, Tq, D]; with
  /// kv_rows (i32 [B]) row b of the query reads row kv_rows[b] of k and v (see ops::attention).
  Tensor attend_cached(const Tensor& query, const Tensor& k, const Tensor& v,
                       const ops::AttentionMask& mask, const Tensor& kv_rows = {},
                       const Tensor& bias = {}) const;
  /// The attention weights of query [B, Tq, D] over memory [B, Tk, D] under `mask`:
  /// probabilities [B, H, Tq, Tk] from the reference (unfused) attention, each row summing to 1
  /// over the visible keys (inference, no tape; for showing what the model attends to).
  Tensor probabilities(const Tensor& query, const Tensor& memory, const ops::AttentionMask& mask,
                       const Tensor& bias = {}) const;
  /// Queries of query [B, Tq, D] split into heads: [B, H, Tq, Dh] (inference, no tape).
  Tensor project_query(const Tensor& query) const;
  int64_t dim, heads, head_dim;  // heads * head_dim: the width of q, k, v and out_proj's input
  double scale;                  // of the scores: 1 / sqrt(head_dim), or 1 (unscaled)
  AttentionConfig config;
  Linear q_proj, k_proj, v_proj, out_proj;
};

}  // namespace attend::nn
