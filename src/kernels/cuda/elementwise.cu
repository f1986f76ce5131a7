// Elementwise CUDA kernels, activations, dropout and the simple reductions: grid-stride loops,
// one thread per element; reductions one block per row or per fixed part (deterministic).
#include <cuda_bf16.h>

#include "core/rng.h"
#include "kernels/activations.h"
#include "kernels/cuda/launch.cuh"

namespace attend::cuda {
namespace {
namespace act = kernels::act;

__global__ void sum_squares_parts(const float* x, int64_t n, Partition p, double* parts) {
  double s = 0;
  const int64_t b = p.begin(blockIdx.x), e = p.end(blockIdx.x, n);
  for (int64_t i = b + threadIdx.x; i < e; i += blockDim.x) s += double(x[i]) * double(x[i]);
  s = block_sum(s);
  if (threadIdx.x == 0) parts[blockIdx.x] = s;
}

__global__ void sum_rows_kernel(const float* dy, float* db, int64_t rows, int64_t cols) {
  const int64_t c = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (c >= cols) return;
  float acc = 0;
  for (int64_t r = 0; r < rows; ++r) acc += dy[r * cols + c];
  db[c] = acc;
}

__global__ void sum_last_kernel(const float* x, float* y, int64_t cols) {
  const float* xr = x + blockIdx.x * cols;
  float acc = 0;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) acc += xr[c];
  acc = block_sum(acc);
  if (threadIdx.x == 0) y[blockIdx.x] = acc;
}

}  // namespace

void binary(Queue q, Binary op, const float* a, const float* b, float* y, int64_t n) {
  switch (op) {
    case Binary::kAdd:
      return for_each(q, n, "add", [=] __device__(int64_t i) { y[i] = a[i] + b[i]; });
    case Binary::kSub:
      return for_each(q, n, "sub", [=] __device__(int64_t i) { y[i] = a[i] - b[i]; });
    case Binary::kMul:
      return for_each(q, n, "mul", [=] __device__(int64_t i) { y[i] = a[i] * b[i]; });
  }
}

void unary(Queue q, Unary op, const float* x, float* y, int64_t n) {
  switch (op) {
    case Unary::kExp:
      return for_each(q, n, "exp", [=] __device__(int64_t i) { y[i] = expf(x[i]); });
    case Unary::kLog:
      return for_each(q, n, "log", [=] __device__(int64_t i) { y[i] = logf(x[i]); });
    case Unary::kRsqrt:
      return for_each(q, n, "rsqrt", [=] __device__(int64_t i) { y[i] = 1.f / sqrtf(x[i]); });
    case Unary::kRelu:
      return for_each(q, n, "relu", [=] __device__(int64_t i) { y[i] = act::relu(x[i]); });
    case Unary::kGelu:
      return for_each(q, n, "gelu", [=] __device__(int64_t i) { y[i] = act::gelu(x[i]); });
    case Unary::kGeluTanh:
      return for_each(q, n, "gelu_tanh",
                      [=] __device__(int64_t i) { y[i] = act::gelu_tanh(x[i]); });
    case Unary::kSilu:
      return for_each(q, n, "silu", [=] __device__(int64_t i) { y[i] = act::silu(x[i]); });
  }
}

void unary_backward(Queue q, Unary op, const float* x, const float* dy, float* dx, int64_t n) {
  switch (op) {
    case Unary::kRelu:
      return for_each(q, n, "relu_backward",
                      [=] __device__(int64_t i) { dx[i] = act::relu_grad(x[i], dy[i]); });
    case Unary::kGelu:
      return for_each(q, n, "gelu_backward",
                      [=] __device__(int64_t i) { dx[i] = act::gelu_grad(x[i], dy[i]); });
    case Unary::kGeluTanh:
      return for_each(q, n, "gelu_tanh_backward",
                      [=] __device__(int64_t i) { dx[i] = act::gelu_tanh_grad(x[i], dy[i]); });
    case Unary::kSilu:
      return for_each(q, n, "silu_backward",
                      [=] __device__(int64_t i) { dx[i] = act::silu_grad(x[i], dy[i]); });
    case Unary::kExp:
    case Unary::kLog:
    case Unary::kRsqrt:
      break;
  }
  throw_error("cuda::unary_backward: not an activation", __FILE__, __LINE__);
}

void round_to_bf16(Queue q, const float* x, uint16_t* y, int64_t n) {
  for_each(q, n, "round_to_bf16",
           [=] __device__(int64_t i) { y[i] = __bfloat16_as_ushort(__float2bfloat16_rn(x[i])); });
}

void affine(Queue q, const float* x, float* y, int64_t n, float alpha, float beta) {
  for_each(q, n, "affine", [=] __device__(int64_t i) { y[i] = alpha * x[i] + beta; });
}

void dropout(Queue q, const float* x, float* y, int64_t n, float p, uint64_t seed,
             uint64_t stream) {
  const float scale = 1.f / (1.f - p);
  for_each(q, n, "dropout", [=] __device__(int64_t i) {
    y[i] = philox_uniform(seed, stream, static_cast<uint64_t>(i)) >= p ? x[i] * scale : 0.f;
  });
}

void sum_squares(Queue q, const float* x, int64_t n, double* parts) {
  if (n == 0) return;
  use_device(q);
  const Partition p = partition(n, kReduceParts);
  sum_squares_parts<<<static_cast<unsigned>(p.parts), kThreads, 0, stream_of(q)>>>(x, n, p, parts);
  check_launch("sum_squares");
}

void bias_add(Queue q, const float* x, const float* b, float* y, int64_t rows, int64_t cols) {
  for_each(q, rows * cols, "bias_add", [=] __device__(int64_t i) { y[i] = x[i] + b[i % cols]; });
}

void sum_rows(Queue q, const float* dy, float* db, int64_t rows, int64_t cols) {
  if (cols == 0) return;
  use_device(q);
  sum_rows_kernel<<<blocks_for(cols), kThreads, 0, stream_of(q)>>>(dy, db, rows, cols);
  check_launch("sum_rows");
}

void sum_last(Queue q, const float* x, float* y, int64_t rows, int64_t cols) {
  if (rows == 0) return;
  use_device(q);
  sum_last_kernel<<<static_cast<unsigned>(rows), row_threads(cols), 0, stream_of(q)>>>(x, y, cols);
  check_launch("sum_last");
}

void broadcast_last(Queue q, const float* x, float* y, int64_t rows, int64_t cols) {
  for_each(q, rows * cols, "broadcast_last", [=] __device__(int64_t i) { y[i] = x[i / cols]; });
}

}  // namespace attend::cuda
