// Symmetric per-row int8 quantization on CUDA: one block per row (its largest magnitude is a
// block reduction), the same rounding as the reference (to nearest, ties to even).
#include "kernels/cuda/launch.cuh"

namespace attend::cuda {
namespace {

__global__ void quantize_rows_kernel(const float* x, int8_t* out, float* scales, int64_t cols,
                                     int32_t* bad) {
  const int64_t o = blockIdx.x * cols;
  float m = 0;
  int finite = 1;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    const float v = x[o + c];
    if (!isfinite(v)) finite = 0;
    m = fmaxf(m, fabsf(v));
  }
  m = block_max(m);
  finite = __syncthreads_and(finite);
  const float s = finite ? m / 127.f : 0.f;
  if (threadIdx.x == 0) {
    scales[blockIdx.x] = s;
    if (!finite) record_first(bad, report_position(blockIdx.x));
  }
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x)
    out[o + c] = s == 0.f ? int8_t{0}
                          : static_cast<int8_t>(fminf(fmaxf(rintf(x[o + c] / s), -127.f), 127.f));
}

}  // namespace

void quantize_rows(Queue q, const float* x, int8_t* out, float* scales, int64_t rows, int64_t cols,
                   int32_t* bad) {
  if (rows == 0) return;
  use_device(q);
  quantize_rows_kernel<<<static_cast<unsigned>(rows), row_threads(cols), 0, stream_of(q)>>>(
      x, out, scales, cols, bad);
  check_launch("quantize_rows");
}

void dequantize_rows(Queue q, const int8_t* in, const float* scales, float* y, int64_t rows,
                     int64_t cols) {
  for_each(q, rows * cols, "dequantize_rows",
           [=] __device__(int64_t e) { y[e] = static_cast<float>(in[e]) * scales[e / cols]; });
}

}  // namespace attend::cuda
