// Elementwise CUDA kernels: grid-stride loops, one thread per element.
#include <cuda_runtime.h>

#include "core/cuda_check.h"
#include "kernels/cuda/cuda.h"

namespace attend::cuda {
namespace {

constexpr int kThreads = 256;

int blocks_for(int64_t n) {
  const int64_t b = (n + kThreads - 1) / kThreads;
  return static_cast<int>(b < 65535 * 8 ? b : 65535 * 8);
}

__global__ void add_kernel(const float* a, const float* b, float* y, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    y[i] = a[i] + b[i];
}

__global__ void relu_kernel(const float* x, float* y, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    y[i] = x[i] > 0.f ? x[i] : 0.f;
}

__global__ void relu_backward_kernel(const float* x, const float* dy, float* dx, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    dx[i] = x[i] > 0.f ? dy[i] : 0.f;
}

}  // namespace

void add(Queue q, const float* a, const float* b, float* y, int64_t n) {
  if (n == 0) return;
  ATTEND_CUDA_CHECK(cudaSetDevice(q.device));
  add_kernel<<<blocks_for(n), kThreads, 0, static_cast<cudaStream_t>(q.stream)>>>(a, b, y, n);
  ATTEND_CUDA_CHECK(cudaGetLastError());
}

void relu(Queue q, const float* x, float* y, int64_t n) {
  if (n == 0) return;
  ATTEND_CUDA_CHECK(cudaSetDevice(q.device));
  relu_kernel<<<blocks_for(n), kThreads, 0, static_cast<cudaStream_t>(q.stream)>>>(x, y, n);
  ATTEND_CUDA_CHECK(cudaGetLastError());
}

void relu_backward(Queue q, const float* x, const float* dy, float* dx, int64_t n) {
  if (n == 0) return;
  ATTEND_CUDA_CHECK(cudaSetDevice(q.device));
  relu_backward_kernel<<<blocks_for(n), kThreads, 0, static_cast<cudaStream_t>(q.stream)>>>(x, dy, dx, n);
  ATTEND_CUDA_CHECK(cudaGetLastError());
}

}  // namespace attend::cuda
