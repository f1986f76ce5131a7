// Optimised fp32 CPU kernels: GEMM through a tuned BLAS (OpenBLAS or oneDNN, chosen at run
// time), and vectorised (AVX2/AVX-512 via function multiversioning), multithreaded loops for the
// rest. Same contracts as kernels/ref (see ref.h), which is their test oracle.
#pragma once
#include <cstdint>
#include <string>

#include "kernels/common.h"

namespace attend::cpu {
using kernels::AdamConfig;
using kernels::AttnDims;
using kernels::CrossEntropyConfig;
using kernels::Mask;

enum class GemmLibrary { kOpenBLAS, kDnnl };
/// The library used by sgemm (default: the faster one on our shapes, with the weight
/// gradients on OpenBLAS where it is faster for them, see docs/gemm.md). ATTEND_GEMM=
/// openblas|dnnl or set_gemm_library chooses one library for every product.
GemmLibrary gemm_library();
void set_gemm_library(GemmLibrary lib);
const char* gemm_library_name(GemmLibrary lib);
/// The library, and the weight gradients' where they go to OpenBLAS (see gemm.cpp).
std::string gemm_description();

/// C = alpha * op(A) op(B) + beta * C, row-major.
void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
           int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
/// C = A B^T (row-major A [M, K], B [N, K], C [M, N]) through oneDNN's matmul primitive, built
/// once per shape and kept: what sgemm uses for 33-512 rows (docs/gemm.md).
void sgemm_nt_matmul(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
                     int64_t ldb, float* C, int64_t ldc);
/// `batch` independent sgemm calls; matrix i starts at A + i*stride_a etc. (stride 0 broadcasts).
void sgemm_batched(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                   const float* A, int64_t lda, int64_t stride_a, const float* B, int64_t ldb,
                   int64_t stride_b, float beta, float* C, int64_t ldc, int64_t stride_c,
                   int64_t batch);

/// sgemm_batched's contract with bf16 products: A and B rounded to bf16 (nearest even), the
/// products summed in f32 (oneDNN's matmul primitive, gemm_bf16.cpp). What gemm runs on f32
/// tensors while the thread's context asks for bf16 products (core/context.h).
void gemm_bf16_batched(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                       const float* A, int64_t lda, int64_t stride_a, const float* B, int64_t ldb,
                       int64_t stride_b, float beta, float* C, int64_t ldc, int64_t stride_c,
                       int64_t batch);
/// C [R, N] = A [R, K] B^T with B a bf16 weight [N, K] (raw bits), the arithmetic in f32: up to
/// 64 rows stream B as it is, more rows widen blocks of B and run sgemm (gemm_small.cpp).
void gemm_bf16_weight(int64_t R, int64_t N, int64_t K, const float* A, const uint16_t* B, float* C);
/// Whether this CPU runs bf16-weight products (AVX-512).
bool bf16_weights_supported();
/// y[i] = x[i] rounded to bf16 (raw bits), nearest even, as to_bf16 (core/types.h).
void round_to_bf16(const float* x, uint16_t* y, int64_t n);
/// oneDNN's kernel for bf16 products on this CPU (e.g. "brg:avx512_core_amx",
/// "brg:avx512_core_bf16"), and whether it computes them natively (AMX or AVX-512 BF16) rather
/// than by widening them to f32.
const std::string& bf16_product_kernel();
bool bf16_products_native();

void add(const float* a, const float* b, float* y, int64_t n);
void accumulate(const float* x, float* y, int64_t n);
void affine(const float* x, float* y, int64_t n, float alpha, float beta);
void mul(const float* a, const float* b, float* y, int64_t n);
void bias_add(const float* x, const float* b, float* y, int64_t rows, int64_t cols);
void sum_rows(const float* dy, float* db, int64_t rows, int64_t cols);
void relu(const float* x, float* y, int64_t n);
void relu_backward(const float* x, const float* dy, float* dx, int64_t n);
void gelu(const float* x, float* y, int64_t n);
void gelu_backward(const float* x, const float* dy, float* dx, int64_t n);
void gelu_tanh(const float* x, float* y, int64_t n);
void gelu_tanh_backward(const float* x, const float* dy, float* dx, int64_t n);
void silu(const float* x, float* y, int64_t n);
void silu_backward(const float* x, const float* dy, float* dx, int64_t n);
void dropout(const float* x, float* y, int64_t n, double p, uint64_t seed, uint64_t stream);
// The reference loops on purpose (elementwise.cpp says why); contracts as in ref.h.
void sub(const float* a, const float* b, float* y, int64_t n);
void exp(const float* x, float* y, int64_t n);
void log(const float* x, float* y, int64_t n);
void rsqrt(const float* x, float* y, int64_t n);
void scale(float* x, int64_t n, float alpha);
double sum_squares(const float* x, int64_t n);
void sum_last(const float* x, float* y, int64_t rows, int64_t cols);
void broadcast_last(const float* x, float* y, int64_t rows, int64_t cols);
/// The sum of x[0..n), accumulated in double (in order).
double sum(const float* x, int64_t n);

void softmax(const float* x, float* y, const AttnDims& d, const Mask& m);
void softmax_backward(const float* y, const float* dy, float* dx, int64_t rows, int64_t cols);
void log_softmax(const float* x, float* y, int64_t rows, int64_t cols);
void log_softmax_backward(const float* y, const float* dy, float* dx, int64_t rows, int64_t cols);
/// y[r] = log sum_j exp(x[r, j]): the same value log_softmax subtracts (x - y[r] == its output).
void logsumexp(const float* x, float* y, int64_t rows, int64_t cols);

/// Layer norm or, with `rms`, RMSNorm (see ref::layer_norm; beta and dbeta may be null).
void layer_norm(const float* x, const float* r, const float* gamma, const float* beta, float* y,
                float* s_out, float* mean, float* rstd, int64_t rows, int64_t cols, double eps,
                bool rms = false);
void layer_norm_backward(const float* dy, const float* s, const float* gamma, const float* mean,
                         const float* rstd, float* ds, float* dgamma, float* dbeta, int64_t rows,
                         int64_t cols, bool rms = false);

void embedding(const int32_t* ids, const float* W, float* out, int64_t n, int64_t D);
void embedding_backward(const int32_t* ids, const float* dout, float* dW, int64_t n, int64_t D);
/// embedding from a bf16 table (raw bits; inference with bf16 weights): rows widened to f32.
void embedding_bf16(const int32_t* ids, const uint16_t* W, float* out, int64_t n, int64_t D);

/// Unfused attention through batched GEMM + masked softmax; p [B, H, Tq, Tk] is kept.
void attention(const float* q, const float* k, const float* v, float* o, float* p,
               const AttnDims& d, const Mask& m, double scale,
               const kernels::ScoreBias<float>& bias = {});
/// `dp_scratch` holds B*H*Tq*Tk floats; dbias as for ref::attention_backward.
void attention_backward(const float* q, const float* k, const float* v, const float* p,
                        const float* dout, float* dq, float* dk, float* dv, float* dp_scratch,
                        const AttnDims& d, double scale, int64_t query_offset = 0,
                        const kernels::ScoreBias<float>& bias = {}, float* dbias = nullptr);

void cross_entropy(const float* logits, const int32_t* targets, float* loss, float* lse,
                   int64_t rows, int64_t V, const CrossEntropyConfig& c);
void cross_entropy_backward(const float* logits, const int32_t* targets, const float* lse,
                            float* dlogits, int64_t rows, int64_t V, const CrossEntropyConfig& c,
                            float grad_scale);

void adam(float* param, const float* grad, float* m, float* v, int64_t n, const AdamConfig& c,
          int64_t step);

/// Per-row int8 quantization (contract: ref::quantize_rows / ref::dequantize_rows).
int64_t quantize_rows(const float* x, int8_t* q, float* scales, int64_t rows, int64_t cols);
void dequantize_rows(const int8_t* q, const float* scales, float* y, int64_t rows, int64_t cols);
/// C [M, N] = (A W^T)[m, n] * sa[m] * sw[n] + bias[n] (bias may be null): A [M, K] and W [N, K]
/// int8 in [-127, 127] (quantize_rows' range), products accumulated exactly in int32
/// (contract: ref::gemm_int8; K < 2^17 keeps the sums in range).
void gemm_int8(int64_t M, int64_t N, int64_t K, const int8_t* A, const float* sa, const int8_t* W,
               const float* sw, const float* bias, float* C);
/// Which int8 product paths this CPU runs (for `attend info`).
std::string int8_kernel_description();
/// The path of x W^T with at most 32 rows (decoding's products) on this CPU, for reports.
std::string small_m_gemm_description();

}  // namespace attend::cpu
