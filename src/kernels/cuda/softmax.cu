// Softmax family on CUDA: one block per row; the row's maximum and sum are block reductions.
#include "kernels/cuda/launch.cuh"

namespace attend::cuda {
namespace {

__global__ void softmax_kernel(const float* x, float* y, AttnDims d, Mask m) {
  const int64_t row = blockIdx.x, b = row / (d.H * d.Tq), i = row % d.Tq;
  const float* xr = x + row * d.Tk;
  float* yr = y + row * d.Tk;
  float mx = -INFINITY;
  for (int64_t j = threadIdx.x; j < d.Tk; j += blockDim.x)
    if (m.allowed(b, i, j, d.Tk)) mx = fmaxf(mx, xr[j]);
  mx = block_max(mx);
  float sum = 0;
  for (int64_t j = threadIdx.x; j < d.Tk; j += blockDim.x)
    if (m.allowed(b, i, j, d.Tk)) sum += expf(xr[j] - mx);
  sum = block_sum(sum);
  const float inv = sum > 0.f ? 1.f / sum : 0.f;  // no visible key: zeros, never NaN
  for (int64_t j = threadIdx.x; j < d.Tk; j += blockDim.x)
    yr[j] = m.allowed(b, i, j, d.Tk) ? expf(xr[j] - mx) * inv : 0.f;
}

__device__ float row_logsumexp(const float* xr, int64_t cols) {
  float mx = -INFINITY;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) mx = fmaxf(mx, xr[c]);
  mx = block_max(mx);
  float sum = 0;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) sum += expf(xr[c] - mx);
  return mx + logf(block_sum(sum));
}

__global__ void log_softmax_kernel(const float* x, float* y, int64_t cols) {
  const float* xr = x + blockIdx.x * cols;
  const float lse = row_logsumexp(xr, cols);
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) y[blockIdx.x * cols + c] = xr[c] - lse;
}

__global__ void logsumexp_kernel(const float* x, float* y, int64_t cols) {
  const float lse = row_logsumexp(x + blockIdx.x * cols, cols);
  if (threadIdx.x == 0) y[blockIdx.x] = lse;
}

// dx = y (dy - <dy, y>)
__global__ void softmax_backward_kernel(const float* y, const float* dy, float* dx, int64_t cols) {
  const int64_t o = blockIdx.x * cols;
  float dot = 0;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) dot += dy[o + c] * y[o + c];
  dot = block_sum(dot);
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) dx[o + c] = y[o + c] * (dy[o + c] - dot);
}

// dx = dy - exp(y) sum(dy)
__global__ void log_softmax_backward_kernel(const float* y, const float* dy, float* dx,
                                            int64_t cols) {
  const int64_t o = blockIdx.x * cols;
  float s = 0;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) s += dy[o + c];
  s = block_sum(s);
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x)
    dx[o + c] = dy[o + c] - expf(y[o + c]) * s;
}

}  // namespace

void softmax(Queue q, const float* x, float* y, const AttnDims& d, const Mask& m) {
  const int64_t rows = d.B * d.H * d.Tq;
  if (rows == 0 || d.Tk == 0) return;
  use_device(q);
  softmax_kernel<<<static_cast<unsigned>(rows), row_threads(d.Tk), 0, stream_of(q)>>>(x, y, d, m);
  check_launch("softmax");
}

void softmax_backward(Queue q, const float* y, const float* dy, float* dx, int64_t rows,
                      int64_t cols) {
  if (rows == 0 || cols == 0) return;
  use_device(q);
  softmax_backward_kernel<<<static_cast<unsigned>(rows), row_threads(cols), 0, stream_of(q)>>>(
      y, dy, dx, cols);
  check_launch("softmax_backward");
}

void log_softmax(Queue q, const float* x, float* y, int64_t rows, int64_t cols) {
  if (rows == 0 || cols == 0) return;
  use_device(q);
  log_softmax_kernel<<<static_cast<unsigned>(rows), row_threads(cols), 0, stream_of(q)>>>(x, y,
                                                                                          cols);
  check_launch("log_softmax");
}

void logsumexp(Queue q, const float* x, float* y, int64_t rows, int64_t cols) {
  if (rows == 0) return;
  use_device(q);
  logsumexp_kernel<<<static_cast<unsigned>(rows), row_threads(cols), 0, stream_of(q)>>>(x, y, cols);
  check_launch("logsumexp");
}

void log_softmax_backward(Queue q, const float* y, const float* dy, float* dx, int64_t rows,
                          int64_t cols) {
  if (rows == 0 || cols == 0) return;
  use_device(q);
  log_softmax_backward_kernel<<<static_cast<unsigned>(rows), row_threads(cols), 0, stream_of(q)>>>(
      y, dy, dx, cols);
  check_launch("log_softmax_backward");
}

}  // namespace attend::cuda
