// CUDA kernels and cuBLAS wrappers, on raw device pointers (the contracts of kernels/ref, whose
// declarations in ref.h say what each computes). Built only with ATTEND_CUDA=ON; the ops layer
// dispatches here for tensors on a CUDA device. One file per op family, named like the CPU and
// reference kernels' files. Every entry point queues its work on the Queue's stream and returns
// without waiting, except where it says it reads a result back.
#pragma once
#include <cstdint>

#include "kernels/common.h"
#include "kernels/cuda/shapes.h"

namespace attend::cuda {

using kernels::AdamConfig;
using kernels::AttnDims;
using kernels::CrossEntropyConfig;
using kernels::Mask;

/// Where device work goes: the device index and the stream (a cudaStream_t; null: the
/// device's default stream). The ops layer fills it from the thread's context.
struct Queue {
  int device = 0;
  void* stream = nullptr;
};

// ------------------------------------------------------------------ gemm.cpp
/// C = alpha * op(A) op(B) + beta * C, row-major, fp32 (cuBLAS, TF32 tensor cores off).
void sgemm(Queue q, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
           const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
           int64_t ldc);
/// Strided-batched variant (cublasSgemmStridedBatched).
void sgemm_batched(Queue q, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                   float alpha, const float* A, int64_t lda, int64_t stride_a, const float* B,
                   int64_t ldb, int64_t stride_b, float beta, float* C, int64_t ldc,
                   int64_t stride_c, int64_t batch);

/// sgemm_batched with both operands rounded to bf16 (to nearest even) and the sums in f32
/// (cublasGemmStridedBatchedEx: bf16 inputs, f32 compute and output): what f32 tensors'
/// products are under ProductsScope(kBF16), as on the CPU. a16 and b16 are device scratch of
/// operand_span (shapes.h) elements for A and B, which are rounded into them in their layout.
void gemm_bf16_batched(Queue q, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                       float alpha, const float* A, int64_t lda, int64_t stride_a, const float* B,
                       int64_t ldb, int64_t stride_b, float beta, float* C, int64_t ldc,
                       int64_t stride_c, int64_t batch, uint16_t* a16, uint16_t* b16);

// ------------------------------------------------------------------ elementwise.cu
/// y[i] = x[i] rounded to bf16 (to nearest even; the bits), as core/types.h's to_bf16.
void round_to_bf16(Queue q, const float* x, uint16_t* y, int64_t n);
enum class Binary { kAdd, kSub, kMul };
/// y = a (op) b elementwise; y may alias a or b.
void binary(Queue q, Binary op, const float* a, const float* b, float* y, int64_t n);
enum class Unary { kExp, kLog, kRsqrt, kRelu, kGelu, kGeluTanh, kSilu };
/// y = f(x); y may alias x.
void unary(Queue q, Unary op, const float* x, float* y, int64_t n);
/// dx = f'(x) dy, for the activations (kRelu, kGelu, kGeluTanh, kSilu).
void unary_backward(Queue q, Unary op, const float* x, const float* dy, float* dx, int64_t n);
/// y = alpha x + beta; y may alias x (scale_).
void affine(Queue q, const float* x, float* y, int64_t n, float alpha, float beta);
/// Inverted dropout with the CPU's masks: keep element i when philox_uniform(seed, stream, i)
/// >= p, scaled by 1 / (1 - p).
void dropout(Queue q, const float* x, float* y, int64_t n, float p, uint64_t seed, uint64_t stream);
/// The sums of x[i]^2 in double over the parts of partition(n, kReduceParts) (shapes.h), one
/// double per part in `parts` (device memory); the caller adds them in order, so the result
/// depends on n only.
void sum_squares(Queue q, const float* x, int64_t n, double* parts);
void bias_add(Queue q, const float* x, const float* b, float* y, int64_t rows, int64_t cols);
/// db[c] = sum over rows of dy[r, c].
void sum_rows(Queue q, const float* dy, float* db, int64_t rows, int64_t cols);
/// y[r] = sum over c of x[r, c] (one block per row).
void sum_last(Queue q, const float* x, float* y, int64_t rows, int64_t cols);
void broadcast_last(Queue q, const float* x, float* y, int64_t rows, int64_t cols);

// ------------------------------------------------------------------ softmax.cu
/// Masked softmax over the last axis of scores [B, H, Tq, Tk]; masked entries and rows with no
/// visible key get 0. key_lengths (if any) is a device pointer.
void softmax(Queue q, const float* x, float* y, const AttnDims& d, const Mask& m);
void softmax_backward(Queue q, const float* y, const float* dy, float* dx, int64_t rows,
                      int64_t cols);
void log_softmax(Queue q, const float* x, float* y, int64_t rows, int64_t cols);
void logsumexp(Queue q, const float* x, float* y, int64_t rows, int64_t cols);
void log_softmax_backward(Queue q, const float* y, const float* dy, float* dx, int64_t rows,
                          int64_t cols);

// ------------------------------------------------------------------ layer_norm.cu
/// Layer norm (rms: RMSNorm, beta null, mean written as 0) of s = x + r (r may be null; s_out
/// then null), the same contract as ref::layer_norm.
void layer_norm(Queue q, const float* x, const float* r, const float* gamma, const float* beta,
                float* y, float* s_out, float* mean, float* rstd, int64_t rows, int64_t cols,
                double eps, bool rms);
/// dgamma and dbeta (null for RMSNorm) are summed over the parts of partition(rows,
/// kReduceParts), then over the parts in order: scratch holds layer_norm_scratch(rows, cols)
/// floats of device memory.
void layer_norm_backward(Queue q, const float* dy, const float* s, const float* gamma,
                         const float* mean, const float* rstd, float* dx, float* dgamma,
                         float* dbeta, float* scratch, int64_t rows, int64_t cols, bool rms);
inline int64_t layer_norm_scratch(int64_t rows, int64_t cols) {
  return 2 * partition(rows, kReduceParts).parts * cols;
}

// ------------------------------------------------------------------ embedding.cu
/// out[i] = W[ids[i]]; ids are device pointers, checked on the device: an id outside [0, V)
/// sets *bad (a device int, 0 before) to its position + 1 and gives a zero row.
void embedding(Queue q, const int32_t* ids, const float* W, float* out, int64_t n, int64_t D,
               int64_t V, int32_t* bad);
/// dW[ids[i]] += dout[i], deterministic (each thread owns columns and visits the positions in
/// order). Out-of-range ids are skipped and reported through *bad as above.
void embedding_backward(Queue q, const int32_t* ids, const float* dout, float* dW, int64_t n,
                        int64_t D, int64_t V, int32_t* bad);

// ------------------------------------------------------------------ attention.cu
/// ops::attention's fused forward (cpu::flash_attention's contract): o [B, H, Tq, Dh], lse
/// [B, H, Tq] (-inf and a zero output for a row with no visible key). d.kv_rows and
/// m.key_lengths are device pointers; Dh <= kAttnMaxDh (an error otherwise).
void flash_attention(Queue q, const float* Q, const float* K, const float* V, float* O, float* lse,
                     const AttnDims& d, const Mask& m, float scale,
                     const kernels::ScoreBias<float>& bias);
/// Its backward from the saved output and lse; scratch: B * H * Tq floats of device memory;
/// dbias (null: not wanted) [B, H, bias.span]. No kv_rows.
void flash_attention_backward(Queue q, const float* Q, const float* K, const float* V,
                              const float* O, const float* lse, const float* dout, float* dq,
                              float* dk, float* dv, float* scratch, const AttnDims& d,
                              const Mask& m, float scale, const kernels::ScoreBias<float>& bias,
                              float* dbias);
/// The unfused reference (ref::attention's contract): P [B, H, Tq, Tk] stored.
void attention(Queue q, const float* Q, const float* K, const float* V, float* O, float* P,
               const AttnDims& d, const Mask& m, float scale,
               const kernels::ScoreBias<float>& bias);
/// Its backward; scratch: B * H * Tq * Tk floats of device memory.
void attention_backward(Queue q, const float* Q, const float* K, const float* V, const float* P,
                        const float* dout, float* dq, float* dk, float* dv, float* scratch,
                        const AttnDims& d, float scale, int64_t query_offset,
                        const kernels::ScoreBias<float>& bias, float* dbias);

// ------------------------------------------------------------------ decoding.cu
// A key/value cache is [slots, groups, capacity, width] of elem_bytes-byte elements (1, 2, 4 or
// 8); the index arrays are device memory whose values the caller has checked.
/// cache[rows[i], g, offsets[i] + j, :] = src[i, g, j, :] for j < t.
void write_positions(Queue q, void* cache, const void* src, const int32_t* rows,
                     const int32_t* offsets, int64_t n, int64_t groups, int64_t capacity, int64_t t,
                     int64_t width, int64_t elem_bytes);
/// cache[to[i], g, j, :] = cache[from[i], g, j, :] for j < lengths[i] (no slot both read and
/// written).
void copy_positions(Queue q, void* cache, const int32_t* from, const int32_t* to,
                    const int32_t* lengths, int64_t n, int64_t groups, int64_t capacity,
                    int64_t width, int64_t elem_bytes);
/// cpu::top_k's contract (banned: nbanned device ints), and with lse (non-null) the row's
/// log-sum-exp over every column, as cpu::top_k_logsumexp.
void top_k(Queue q, const float* x, int64_t n, int64_t V, int64_t k, const int32_t* banned,
           int64_t nbanned, const int32_t* row_banned, float* values, int32_t* indices,
           int32_t* counts, float* lse);
/// out[i] = x[rows[i], cols[i]] (checked indices).
void pick(Queue q, const float* x, int64_t V, const int32_t* rows, const int32_t* cols, int64_t m,
          float* out);
void iota(Queue q, int32_t* out, int64_t rows, int64_t cols);
void add_index(Queue q, const int32_t* x, int32_t k, int32_t* out, int64_t n);

// ------------------------------------------------------------------ cross_entropy.cu
/// Per-row label-smoothed loss and log-sum-exp (ref::cross_entropy's contract), and in
/// counts[0] the rows whose target is not ignore_index, in counts[1] the first row whose target
/// is out of range, + 1 (0: none). counts: 2 device ints.
void cross_entropy(Queue q, const float* logits, const int32_t* targets, float* loss, float* lse,
                   int64_t rows, int64_t V, const CrossEntropyConfig& c, int32_t* counts);
void cross_entropy_backward(Queue q, const float* logits, const int32_t* targets, const float* lse,
                            float* dlogits, int64_t rows, int64_t V, const CrossEntropyConfig& c,
                            float grad_scale);

// ------------------------------------------------------------------ adam.cu
void adam(Queue q, float* param, const float* grad, float* m, float* v, int64_t n,
          const AdamConfig& c, int64_t step);

// ------------------------------------------------------------------ quantize.cu
/// ref::quantize_rows's contract; a row holding an infinite or NaN value is reported in *bad
/// (a device int, 0 before) as row + 1 (the smallest such row) and gets scale 0.
void quantize_rows(Queue q, const float* x, int8_t* out, float* scales, int64_t rows, int64_t cols,
                   int32_t* bad);
void dequantize_rows(Queue q, const int8_t* in, const float* scales, float* y, int64_t rows,
                     int64_t cols);

}  // namespace attend::cuda
