// Ops: one function per op and its _backward. Each validates shapes, dtypes and devices (an
// attend::Error names the op and the shapes), allocates its outputs, and dispatches on
// (device, dtype): CPU f32 -> kernels/cpu, CPU f64 -> kernels/ref (the oracle, used by gradcheck),
// CUDA f32 -> kernels/cuda where that op exists; any other case throws.
// Inputs may be non-contiguous views; outputs are contiguous.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "kernels/common.h"

namespace attend::ops {

using kernels::AdamConfig;
using kernels::CrossEntropyConfig;

// ------------------------------------------------------------------ linear algebra
/// Batched matmul: a [..., M, K] (or [..., K, M] when trans_a), b [..., K, N] (or [..., N, K]).
/// b may also be 2-D and is then shared by every batch entry. Result [..., M, N].
Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a = false, bool trans_b = false);
struct MatmulGrads {
  Tensor da, db;
};
MatmulGrads matmul_backward(const Tensor& dc, const Tensor& a, const Tensor& b, bool trans_a,
                            bool trans_b);

/// y = x w^T + bias: x [..., K], w [N, K] (PyTorch layout), bias [N] or undefined. Also f32 x
/// and bias with a bf16 w (CPU inference with bf16 weights: f32 arithmetic on the widened
/// weights, f32 y; no backward).
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias);
/// Whether this CPU runs linear with bf16 weights (AVX-512).
bool bf16_weights_supported();
/// bf16 products (ProductsScope in core/context.h): oneDNN's kernel for them on this CPU
/// (e.g. "brg:avx512_core_amx"), and whether it is native (AMX or AVX-512 BF16) rather than a
/// widening to f32, which would be slower than f32 products.
const std::string& bf16_products_kernel();
bool bf16_products_native();
struct LinearGrads {
  Tensor dx, dw, dbias;
};
LinearGrads linear_backward(const Tensor& dy, const Tensor& x, const Tensor& w, bool has_bias);

// ------------------------------------------------------------------ elementwise
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
/// alpha * x + beta
Tensor affine(const Tensor& x, double alpha, double beta = 0.0);
/// x converted to a floating dtype (f32, f64, bf16, f16): rounds to nearest even; x itself when
/// it already has that dtype. CPU only for now.
Tensor cast(const Tensor& x, DType dtype);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor rsqrt(const Tensor& x);
/// y += x in place (same shape, dtype, device; y contiguous).
void accumulate_(Tensor& y, const Tensor& x);
/// x *= alpha in place (x contiguous).
void scale_(Tensor& x, double alpha);
/// The sum of squares of x, accumulated in double in element order (so it does not depend on
/// the thread count): gradient norms.
double sum_squares(const Tensor& x);

/// y = x + bias broadcast over the last dimension: x [..., C], bias [C].
Tensor bias_add(const Tensor& x, const Tensor& bias);
/// Sum over every dimension but the last: dy [..., C] -> [C] (the bias gradient).
Tensor sum_rows(const Tensor& dy);

Tensor relu(const Tensor& x);
Tensor relu_backward(const Tensor& x, const Tensor& dy);
/// Exact (erf) GELU, as PyTorch's default.
Tensor gelu(const Tensor& x);
Tensor gelu_backward(const Tensor& x, const Tensor& dy);
/// GELU's tanh approximation (GPT-2's "gelu_new", PyTorch's gelu(approximate="tanh")).
Tensor gelu_tanh(const Tensor& x);
Tensor gelu_tanh_backward(const Tensor& x, const Tensor& dy);
/// SiLU, x sigmoid(x) (Marian's "swish").
Tensor silu(const Tensor& x);
Tensor silu_backward(const Tensor& x, const Tensor& dy);

/// Inverted dropout with keep-mask from Philox(seed, stream, element index); p in [0, 1).
Tensor dropout(const Tensor& x, double p, uint64_t seed, uint64_t stream);
/// The same mask applied to dy.
Tensor dropout_backward(const Tensor& dy, double p, uint64_t seed, uint64_t stream);

// ------------------------------------------------------------------ reductions
/// Sum of all elements -> shape [] (one element).
Tensor sum(const Tensor& x);
/// Sum over the last dimension: [..., C] -> [...].
Tensor sum_last(const Tensor& x);
/// [...] -> [..., cols], repeating each value (backward of sum_last).
Tensor broadcast_last(const Tensor& x, int64_t cols);
/// A tensor shaped like `like` filled with the single value of `scalar` (backward of sum).
Tensor broadcast_scalar(const Tensor& scalar, const Shape& shape);

// ------------------------------------------------------------------ softmax family
/// Attention masks (see kernels::Mask). key_lengths: i32 [B] (undefined: no padding). causal:
/// query i, at key position i + query_offset, sees keys j <= i + query_offset. local: sliding
/// window of `window` (> 0) keys on each side (only backwards when causal), with the first
/// `global_tokens` positions attending to and attended by everything (Longformer-style).
struct AttentionMask {
  Tensor key_lengths;
  bool causal = false;
  int64_t query_offset = 0;
  bool local = false;
  int64_t window = 0;
  int64_t global_tokens = 0;
};
/// Softmax over the last dimension. With a mask, x must be scores [B, H, Tq, Tk].
Tensor softmax(const Tensor& x, const AttentionMask& mask = {});
Tensor softmax_backward(const Tensor& y, const Tensor& dy);
Tensor log_softmax(const Tensor& x);
/// log sum exp over the last dimension: shape x.shape() without it (CPU; no gradient). The
/// values log_softmax subtracts, so a caller that needs a few log-probabilities of a row need
/// not write all of them.
Tensor logsumexp(const Tensor& x);
Tensor log_softmax_backward(const Tensor& y, const Tensor& dy);

// ------------------------------------------------------------------ layer norm
struct LayerNormOut {
  Tensor y;     // [..., C]
  Tensor sum;   // x + residual (== x when no residual): the residual stream, saved for backward
  Tensor mean;  // [rows]
  Tensor rstd;  // [rows]
  bool rms = false;  // from rms_norm (mean saved as 0)
};
/// y = LayerNorm(x + residual) * gamma + beta over the last dimension. residual may be undefined.
LayerNormOut layer_norm(const Tensor& x, const Tensor& residual, const Tensor& gamma,
                        const Tensor& beta, double eps = 1e-5);
/// RMSNorm (T5's): s = x + residual, y = s / sqrt(mean(s^2) + eps) * gamma over the last
/// dimension; no mean is subtracted and there is no beta. residual may be undefined.
LayerNormOut rms_norm(const Tensor& x, const Tensor& residual, const Tensor& gamma,
                      double eps = 1e-6);
struct LayerNormGrads {
  Tensor dx;  // also the residual's gradient
  Tensor dgamma, dbeta;  // dbeta undefined for RMSNorm
};
/// Backward of layer_norm or rms_norm (saved.rms tells which).
LayerNormGrads layer_norm_backward(const Tensor& dy, const LayerNormOut& saved,
                                   const Tensor& gamma);

// ------------------------------------------------------------------ embedding
/// out [..., D] = weight[ids]: ids i32 [...] with values in [0, V), weight [V, D]. A bf16
/// weight (CPU inference) gives f32 rows.
Tensor embedding(const Tensor& ids, const Tensor& weight);
/// dweight[ids[i]] += dout[i] (sparse accumulation into an existing [V, D] gradient).
void embedding_backward(const Tensor& ids, const Tensor& dout, Tensor& dweight);

// ------------------------------------------------------------------ attention
/// Fused exact attention (the default): out = softmax(scale q k^T + bias + mask) v, computed
/// tile by tile with an online softmax; the Tq x Tk score matrix is never stored. Saves only the
/// per-row log-sum-exp. q [B, H, Tq, Dh], k and v [B, H, Tk, Dh].
///
/// bias (optional): an additive score bias by relative position (T5's), [H, span] shared by the
/// batch or [B, H, span] per batch row, span = P + Tk - 1 with P = Tq + mask.query_offset: query
/// i (at key position p = i + query_offset) and key j add bias[.., h, j - p + P - 1].
struct AttentionOut {
  Tensor out;  // [B, H, Tq, Dh]
  Tensor lse;  // [B, H, Tq], -inf for rows with no visible key (their output is 0)
};
/// kv_rows (optional, i32 [B], CPU, no backward): query batch row b attends to row kv_rows[b]
/// of k and v, whose batch may then differ from q's (the beams of a sentence sharing its
/// encoder keys/values while decoding).
AttentionOut attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionMask& mask,
                       double scale, const Tensor& kv_rows = {}, const Tensor& bias = {});
struct AttentionGrads {
  Tensor dq, dk, dv;
  Tensor dbias;  // shaped like the bias (undefined without one)
};
AttentionGrads attention_backward(const Tensor& dout, const Tensor& q, const Tensor& k,
                                  const Tensor& v, const AttentionOut& saved,
                                  const AttentionMask& mask, double scale, const Tensor& bias = {});

/// Reference (unfused) attention, the oracle: materialises the probabilities [B, H, Tq, Tk].
struct ReferenceAttentionOut {
  Tensor out;    // [B, H, Tq, Dh]
  Tensor probs;  // [B, H, Tq, Tk], saved for backward
};
ReferenceAttentionOut attention_reference(const Tensor& q, const Tensor& k, const Tensor& v,
                                          const AttentionMask& mask, double scale,
                                          const Tensor& bias = {});
/// query_offset: the forward mask's (it places the bias).
AttentionGrads attention_reference_backward(const Tensor& dout, const Tensor& q, const Tensor& k,
                                            const Tensor& v, const Tensor& probs, double scale,
                                            const Tensor& bias = {}, int64_t query_offset = 0);

// ------------------------------------------------------------------ loss
struct CrossEntropyOut {
  Tensor loss;         // [] : sum of per-token losses / normaliser
  Tensor lse;          // [N] saved log-sum-exp
  int64_t tokens = 0;  // rows whose target is not ignore_index
  double normaliser = 1.0;
};
enum class Reduction { kMean, kSum };
/// Label-smoothed softmax cross-entropy: logits [N, V], targets i32 [N] in [0, V) or
/// ignore_index. kMean divides by the number of non-ignored tokens (1 if none).
CrossEntropyOut cross_entropy(const Tensor& logits, const Tensor& targets,
                              const CrossEntropyConfig& config, Reduction reduction);
/// dlogits = dloss / normaliser * (softmax - q); dloss is the upstream scalar gradient.
Tensor cross_entropy_backward(double dloss, const Tensor& logits, const Tensor& targets,
                              const CrossEntropyOut& saved, const CrossEntropyConfig& config);

// ------------------------------------------------------------------ decoding
// A key/value cache is [slots, H, capacity, Dh] (contiguous, CPU); a decoding row names its
// slot, and its length is how many positions of the slot hold keys. Any element type.
/// cache[rows[i], :, offsets[i] + j] = src[i, :, j] for j < src.size(2): src [n, H, t, Dh],
/// rows and offsets i32 [n].
void write_positions(Tensor& cache, const Tensor& src, const Tensor& rows, const Tensor& offsets);
/// cache[to[i], :, j] = cache[from[i], :, j] for j < lengths[i] (a beam that branches); no slot
/// may be written twice or be both read and written. from, to, lengths i32 [n].
void copy_positions(Tensor& cache, const Tensor& from, const Tensor& to, const Tensor& lengths);
struct TopK {
  Tensor values;   // [n, k], best first (equal values: lower column first)
  Tensor indices;  // i32 [n, k] (-1 past counts[r])
  Tensor counts;   // i32 [n]: entries found (< k only when fewer columns are allowed)
};
/// The k largest entries of each row of x [n, V] (f32, CPU), skipping columns in `banned` and,
/// in row r, column row_banned[r] when it is >= 0 (row_banned: i32 [n] or undefined).
TopK top_k(const Tensor& x, int64_t k, const std::vector<int32_t>& banned = {},
           const Tensor& row_banned = {});
/// top_k and logsumexp(x) [n] (over every column) in one pass over x: the fused log-softmax and
/// top-k of a decoding step (log-probabilities of the candidates: values - lse).
struct TopKLse {
  TopK top;
  Tensor lse;  // [n]
};
TopKLse top_k_logsumexp(const Tensor& x, int64_t k, const std::vector<int32_t>& banned = {},
                        const Tensor& row_banned = {});
/// The decoding sampler's settings for m rows of a logits tensor.
struct SampleRows {
  Tensor rows;         // i32 [m]: which rows of x draw
  Tensor temperature;  // f64 [m], > 0
  Tensor top_k;        // i32 [m]: keep the k most likely tokens (0: all)
  Tensor top_p;        // f64 [m] in (0, 1]: then the smallest set holding this probability
  Tensor uniform;      // f32 [m] in [0, 1): the draw (inverse CDF over the kept tokens)
};
/// One token id per listed row of x [n, V] (i32 [m]), never a column in `banned` nor, in row r,
/// column row_banned[r] when it is >= 0 (row_banned: i32 [n] or undefined); -1 for a row where
/// every column is banned. Deterministic given `uniform`.
Tensor sample(const Tensor& x, const SampleRows& s, const std::vector<int32_t>& banned = {},
              const Tensor& row_banned = {});
/// x[rows[i], cols[i]] for each i: x f32 [n, V], rows and cols i32 [m] -> f32 [m].
Tensor pick(const Tensor& x, const Tensor& rows, const Tensor& cols);
/// i32 tensor of `shape` on `device` whose every element is its index along the last dimension
/// (positions 0..T-1 of each row of a [B, T] batch).
Tensor iota(const Shape& shape, Device device);
/// x + k for an i32 tensor x (key lengths from positions, and the like).
Tensor add_index(const Tensor& x, int32_t k);

// ------------------------------------------------------------------ optimizer
/// One Adam(W) step in place on param, m and v (step counts from 1).
void adam_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamConfig& config,
                 int64_t step);

// ------------------------------------------------------------------ quantization
/// x [..., cols] (f32 or f64) as int8 with one scale per row (symmetric, as quantized weights
/// are stored): scales[r] = max |x[r, :]| / 127, q = round(x / scale) in [-127, 127]; a zero
/// row gets scale 0. |dequantize - x| <= scale / 2 elementwise. An infinite or NaN value is an
/// error naming its row.
struct QuantizedRows {
  Tensor q;       // i8, x's shape
  Tensor scales;  // x's dtype, [rows] (x's shape without the last dimension)
};
QuantizedRows quantize_rows(const Tensor& x);
/// q * scales per row: i8 q [..., cols], scales [rows] (f32 or f64) -> scales' dtype, q's shape.
Tensor dequantize_rows(const Tensor& q, const Tensor& scales);
/// y = x W^T + bias with W quantized per output row (i8 w [N, K], f32 w_scales [N]) and x
/// (f32 [..., K], CPU) quantized per row on the fly (quantize_rows): int8 products accumulated
/// exactly in int32, then scaled (cpu::gemm_int8). Inference only (no gradient). Against the
/// f32 product of the unquantized values, |y - x W^T| <= (s_w/2) sum|x| + (s_x/2) sum|W_n| +
/// K s_x s_w / 4 per element, s_x, s_w the two rows' scales (tests/ops/test_quantize.cpp).
Tensor linear_int8(const Tensor& x, const Tensor& w, const Tensor& w_scales,
                   const Tensor& bias = {});
/// The int8 product paths of this CPU, for reports ("avx2 kernel; oneDNN above 48 rows ...").
std::string int8_products_kernel();
/// The fused attention's micro-kernels on this CPU, for reports ("avx2+fma micro-kernels ...").
std::string attention_kernel();
/// The path of decoding's products x W^T (at most 32 rows) on this CPU, for reports.
std::string decoding_gemm_kernel();

// ------------------------------------------------------------------ backends
/// The library behind CPU f32 GEMMs in this process, for reports: "onednn" or "openblas", and
/// where weight gradients go to the other one, "onednn (weight gradients: openblas)".
std::string cpu_gemm_description();

}  // namespace attend::ops
