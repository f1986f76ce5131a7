// Reference kernels: plain scalar loops on raw pointers, templated on float/double. They are
// the oracle for every optimised kernel (run in double) and the f64 path used by gradcheck.
// All buffers are contiguous row-major. Backward kernels write (=) their outputs unless noted.
#pragma once
#include <cstdint>

#include "kernels/common.h"

namespace attend::ref {
using kernels::AdamConfig;
using kernels::AttnDims;
using kernels::CrossEntropyConfig;
using kernels::Mask;
using kernels::ScoreBias;

/// C = alpha * op(A) op(B) + beta * C; op(A) is [M, K], op(B) is [K, N]; row-major.
template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
          int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc);

template <typename T> void add(const T* a, const T* b, T* y, int64_t n);
template <typename T> void sub(const T* a, const T* b, T* y, int64_t n);
template <typename T> void mul(const T* a, const T* b, T* y, int64_t n);
/// y = alpha * x + beta (elementwise affine).
template <typename T> void affine(const T* x, T* y, int64_t n, T alpha, T beta);
template <typename T> void exp(const T* x, T* y, int64_t n);
template <typename T> void log(const T* x, T* y, int64_t n);
template <typename T> void rsqrt(const T* x, T* y, int64_t n);
/// y += x
template <typename T> void accumulate(const T* x, T* y, int64_t n);
/// x *= alpha in place.
template <typename T> void scale(T* x, int64_t n, T alpha);
/// sum of x^2 accumulated in double in element order (the same bits on any thread count).
template <typename T> double sum_squares(const T* x, int64_t n);

/// y[r, c] = x[r, c] + b[c]
template <typename T> void bias_add(const T* x, const T* b, T* y, int64_t rows, int64_t cols);
/// db[c] = sum_r dy[r, c]   (also the backward of broadcasting over rows)
template <typename T> void sum_rows(const T* dy, T* db, int64_t rows, int64_t cols);
/// y[r] = sum_c x[r, c]
template <typename T> void sum_last(const T* x, T* y, int64_t rows, int64_t cols);
/// y[r, c] = x[r]
template <typename T> void broadcast_last(const T* x, T* y, int64_t rows, int64_t cols);

template <typename T> void relu(const T* x, T* y, int64_t n);
template <typename T> void relu_backward(const T* x, const T* dy, T* dx, int64_t n);
/// Exact GELU: x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)).
template <typename T> void gelu(const T* x, T* y, int64_t n);
template <typename T> void gelu_backward(const T* x, const T* dy, T* dx, int64_t n);
template <typename T> void gelu_tanh(const T* x, T* y, int64_t n);
template <typename T> void gelu_tanh_backward(const T* x, const T* dy, T* dx, int64_t n);
/// SiLU ("swish"): x sigmoid(x).
template <typename T> void silu(const T* x, T* y, int64_t n);
template <typename T> void silu_backward(const T* x, const T* dy, T* dx, int64_t n);

/// Inverted dropout: y = x * keep / (1 - p), keep = philox_uniform(seed, stream, i) >= p.
/// The mask is recomputed in backward from (seed, stream); nothing is stored.
template <typename T>
void dropout(const T* x, T* y, int64_t n, double p, uint64_t seed, uint64_t stream);

/// Masked softmax over the last axis of scores [B, H, Tq, Tk]; masked entries get 0.
template <typename T> void softmax(const T* x, T* y, const AttnDims& d, const Mask& m);
/// dx = y * (dy - sum(dy * y)) per row of length cols.
template <typename T>
void softmax_backward(const T* y, const T* dy, T* dx, int64_t rows, int64_t cols);
template <typename T> void log_softmax(const T* x, T* y, int64_t rows, int64_t cols);
template <typename T> void logsumexp(const T* x, T* y, int64_t rows, int64_t cols);
/// dx = dy - exp(y) * sum(dy) per row.
template <typename T>
void log_softmax_backward(const T* y, const T* dy, T* dx, int64_t rows, int64_t cols);

/// s = x + r (r may be null: s = x); y = (s - mean) * rstd * gamma + beta per row (beta may be
/// null: no shift). With `rms` (RMSNorm) the mean is not subtracted: saved as 0, and rstd is
/// 1 / sqrt(mean(s^2) + eps). s_out (may be null) receives s; mean and rstd [rows] are saved for
/// backward.
template <typename T>
void layer_norm(const T* x, const T* r, const T* gamma, const T* beta, T* y, T* s_out, T* mean,
                T* rstd, int64_t rows, int64_t cols, double eps, bool rms = false);
/// From dy and the saved s, mean, rstd: ds, dgamma, dbeta (all written; dbeta may be null).
template <typename T>
void layer_norm_backward(const T* dy, const T* s, const T* gamma, const T* mean, const T* rstd,
                         T* ds, T* dgamma, T* dbeta, int64_t rows, int64_t cols, bool rms = false);

/// out[i, :] = W[ids[i], :]  (ids already validated in [0, V)).
template <typename T>
void embedding(const int32_t* ids, const T* W, T* out, int64_t n, int64_t D);
/// dW[ids[i], :] += dout[i, :]  (sparse accumulation: only rows named by ids are touched).
template <typename T>
void embedding_backward(const int32_t* ids, const T* dout, T* dW, int64_t n, int64_t D);

/// Unfused attention: p = masked_softmax(scale * q k^T + bias) [B, H, Tq, Tk], o = p v.
template <typename T>
void attention(const T* q, const T* k, const T* v, T* o, T* p, const AttnDims& d, const Mask& m,
               double scale, const ScoreBias<T>& bias = {});
/// dbias (null: not wanted) receives [B, H, bias.span]; query_offset as in the forward's mask.
template <typename T>
void attention_backward(const T* q, const T* k, const T* v, const T* p, const T* dout, T* dq, T* dk,
                        T* dv, const AttnDims& d, double scale, int64_t query_offset = 0,
                        const ScoreBias<T>& bias = {}, T* dbias = nullptr);

/// Per-row label-smoothed cross-entropy: loss[r] = lse - (1-eps) x[t] - eps/V sum_v x[v];
/// ignored rows get loss 0. lse [rows] is saved for backward.
template <typename T>
void cross_entropy(const T* logits, const int32_t* targets, T* loss, T* lse, int64_t rows,
                   int64_t V, const CrossEntropyConfig& c);
/// dlogits[r] = grad_scale * (softmax(x_r) - q_r); ignored rows get 0.
template <typename T>
void cross_entropy_backward(const T* logits, const int32_t* targets, const T* lse, T* dlogits,
                            int64_t rows, int64_t V, const CrossEntropyConfig& c, T grad_scale);

/// One Adam(W) step (bias-corrected, step >= 1): decoupled weight decay when weight_decay > 0.
template <typename T>
void adam(T* param, const T* grad, T* m, T* v, int64_t n, const AdamConfig& c, int64_t step);

/// Symmetric per-row int8 quantization of x [rows, cols]: scales[r] = max_c |x[r, c]| / 127,
/// q[r, c] = round-to-nearest-even(x[r, c] / scales[r]) clamped to [-127, 127] (a zero row:
/// scale 0, q 0). Returns -1, or the first row holding an infinity or NaN (its outputs are
/// unspecified).
template <typename T>
int64_t quantize_rows(const T* x, int8_t* q, T* scales, int64_t rows, int64_t cols);
/// y[r, c] = q[r, c] * scales[r].
template <typename T>
void dequantize_rows(const int8_t* q, const T* scales, T* y, int64_t rows, int64_t cols);
/// C [M, N] = (sum_k A[m, k] W[n, k], in int64) * sa[m] * sw[n] + bias[n] (bias may be null),
/// the scaling in f64 then rounded to f32: A [M, K], W [N, K] int8.
void gemm_int8(int64_t M, int64_t N, int64_t K, const int8_t* A, const float* sa, const int8_t* W,
               const float* sw, const float* bias, float* C);

}  // namespace attend::ref
