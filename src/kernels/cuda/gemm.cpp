// cuBLAS GEMM wrappers. cuBLAS is column-major: a row-major C = op(A) op(B) is computed as the
// column-major C^T = op(B)^T op(A)^T, i.e. by swapping the operands.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <vector>

#include "core/cuda_check.h"
#include "core/error.h"
#include "kernels/cuda/cuda.h"

#define ATTEND_CUBLAS_CHECK(expr)                                                           \
  do {                                                                                      \
    cublasStatus_t attend_st_ = (expr);                                                     \
    if (attend_st_ != CUBLAS_STATUS_SUCCESS)                                                \
      ::attend::throw_error(::attend::format("{}: {}", #expr, cublasGetStatusString(attend_st_)), \
                            __FILE__, __LINE__);                                            \
  } while (0)

namespace attend::cuda {
namespace {

/// One cuBLAS handle per (thread, device): a handle's stream is set before every call, so
/// threads queueing on different streams must not share one.
class Handles {
 public:
  ~Handles() {
    for (cublasHandle_t h : handles_)
      if (h) cublasDestroy(h);
  }
  cublasHandle_t get(int device) {
    if (handles_.size() <= static_cast<size_t>(device)) handles_.resize(device + 1, nullptr);
    ATTEND_CUDA_CHECK(cudaSetDevice(device));
    if (!handles_[device]) {
      ATTEND_CUBLAS_CHECK(cublasCreate(&handles_[device]));
      // Exact fp32 so results compare with the CPU at fp32 tolerance.
      ATTEND_CUBLAS_CHECK(cublasSetMathMode(handles_[device], CUBLAS_DEFAULT_MATH));
    }
    return handles_[device];
  }

 private:
  std::vector<cublasHandle_t> handles_;
};

cublasHandle_t handle(int device) {
  thread_local Handles handles;
  return handles.get(device);
}

}  // namespace

void sgemm(Queue q, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha,
           const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
           int64_t ldc) {
  sgemm_batched(q, ta, tb, M, N, K, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0, 1);
}

void sgemm_batched(Queue q, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha,
                   const float* A, int64_t lda, int64_t stride_a, const float* B, int64_t ldb,
                   int64_t stride_b, float beta, float* C, int64_t ldc, int64_t stride_c,
                   int64_t batch) {
  if (M == 0 || N == 0 || batch == 0) return;
  cublasHandle_t h = handle(q.device);
  ATTEND_CUBLAS_CHECK(cublasSetStream(h, static_cast<cudaStream_t>(q.stream)));
  ATTEND_CUBLAS_CHECK(cublasSgemmStridedBatched(
      h, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, static_cast<int>(N),
      static_cast<int>(M), static_cast<int>(K), &alpha, B, static_cast<int>(ldb), stride_b, A,
      static_cast<int>(lda), stride_a, &beta, C, static_cast<int>(ldc), stride_c,
      static_cast<int>(batch)));
}

void gemm_bf16_batched(Queue q, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha,
                       const float* A, int64_t lda, int64_t stride_a, const float* B, int64_t ldb,
                       int64_t stride_b, float beta, float* C, int64_t ldc, int64_t stride_c,
                       int64_t batch, uint16_t* a16, uint16_t* b16) {
  if (M == 0 || N == 0 || batch == 0) return;
  round_to_bf16(q, A, a16, operand_span(ta ? K : M, ta ? M : K, lda, stride_a, batch));
  round_to_bf16(q, B, b16, operand_span(tb ? N : K, tb ? K : N, ldb, stride_b, batch));
  cublasHandle_t h = handle(q.device);
  ATTEND_CUBLAS_CHECK(cublasSetStream(h, static_cast<cudaStream_t>(q.stream)));
  ATTEND_CUBLAS_CHECK(cublasGemmStridedBatchedEx(
      h, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, static_cast<int>(N),
      static_cast<int>(M), static_cast<int>(K), &alpha, b16, CUDA_R_16BF, static_cast<int>(ldb),
      stride_b, a16, CUDA_R_16BF, static_cast<int>(lda), stride_a, &beta, C, CUDA_R_32F,
      static_cast<int>(ldc), stride_c, static_cast<int>(batch), CUBLAS_COMPUTE_32F,
      CUBLAS_GEMM_DEFAULT));
}

}  // namespace attend::cuda
