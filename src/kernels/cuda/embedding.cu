// Embedding gather and its scatter-add backward on CUDA. The backward is deterministic without
// atomics: each thread owns columns of the table and adds the positions' rows in order, so
// repeated ids never race and the sums do not depend on scheduling.
#include "kernels/cuda/launch.cuh"

namespace attend::cuda {
namespace {

__global__ void embedding_backward_kernel(const int32_t* ids, const float* dout, float* dW,
                                          int64_t n, int64_t D, int64_t V, int32_t* bad) {
  const int64_t c = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (c >= D) return;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t id = ids[i];
    if (id < 0 || id >= V) {
      if (c == 0) record_first(bad, report_position(i));
      continue;
    }
    dW[id * D + c] += dout[i * D + c];
  }
}

}  // namespace

void embedding(Queue q, const int32_t* ids, const float* W, float* out, int64_t n, int64_t D,
               int64_t V, int32_t* bad) {
  for_each(q, n * D, "embedding", [=] __device__(int64_t e) {
    const int64_t i = e / D, c = e % D, id = ids[i];
    if (id < 0 || id >= V) {
      if (c == 0) record_first(bad, report_position(i));
      out[e] = 0.f;
      return;
    }
    out[e] = W[id * D + c];
  });
}

void embedding_backward(Queue q, const int32_t* ids, const float* dout, float* dW, int64_t n,
                        int64_t D, int64_t V, int32_t* bad) {
  if (n == 0 || D == 0) return;
  use_device(q);
  embedding_backward_kernel<<<blocks_for(D), kThreads, 0, stream_of(q)>>>(ids, dout, dW, n, D, V,
                                                                          bad);
  check_launch("embedding_backward");
}

}  // namespace attend::cuda
