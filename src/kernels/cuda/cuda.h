// CUDA kernels and cuBLAS wrappers, on raw device pointers (same contracts as kernels/ref).
// Built only with ATTEND_CUDA=ON; the ops layer dispatches here for tensors on a CUDA device.
// New CUDA ops are added here as kernels: the op API and the tensor/allocator design stay.
#pragma once
#include <cstdint>

namespace attend::cuda {

/// Where device work goes: the device index and the stream (a cudaStream_t; null: the
/// device's default stream). The ops layer fills it from the thread's context.
struct Queue {
  int device = 0;
  void* stream = nullptr;
};

/// C = alpha * op(A) op(B) + beta * C, row-major, fp32 (cuBLAS, TF32 tensor cores off).
void sgemm(Queue q, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
           const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
           int64_t ldc);
/// Strided-batched variant (cublasSgemmStridedBatched).
void sgemm_batched(Queue q, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                   float alpha, const float* A, int64_t lda, int64_t stride_a, const float* B,
                   int64_t ldb, int64_t stride_b, float beta, float* C, int64_t ldc,
                   int64_t stride_c, int64_t batch);

void add(Queue q, const float* a, const float* b, float* y, int64_t n);
void relu(Queue q, const float* x, float* y, int64_t n);
void relu_backward(Queue q, const float* x, const float* dy, float* dx, int64_t n);

}  // namespace attend::cuda
