// Label-smoothed cross-entropy on CUDA: one block per row for the loss and log-sum-exp (block
// reductions), one thread per logit for the backward.
#include "kernels/cuda/launch.cuh"

namespace attend::cuda {
namespace {

__global__ void cross_entropy_kernel(const float* logits, const int32_t* targets, float* loss,
                                     float* lse, int64_t V, float eps, int32_t ignore,
                                     int32_t* counts) {
  const int64_t r = blockIdx.x;
  const float* x = logits + r * V;
  float mx = -INFINITY;
  for (int64_t j = threadIdx.x; j < V; j += blockDim.x) mx = fmaxf(mx, x[j]);
  mx = block_max(mx);
  float sum = 0, sx = 0;
  for (int64_t j = threadIdx.x; j < V; j += blockDim.x) {
    sum += expf(x[j] - mx);
    sx += x[j];
  }
  sum = block_sum(sum);
  sx = block_sum(sx);
  if (threadIdx.x != 0) return;
  const float l = mx + logf(sum);
  lse[r] = l;
  const int32_t t = targets[r];
  if (t == ignore) {
    loss[r] = 0.f;
    return;
  }
  if (t < 0 || t >= V) {
    record_first(counts + 1, report_position(r));
    loss[r] = 0.f;
    return;
  }
  atomicAdd(counts, 1);
  loss[r] = l - (1.f - eps) * x[t] - eps / static_cast<float>(V) * sx;
}

}  // namespace

void cross_entropy(Queue q, const float* logits, const int32_t* targets, float* loss, float* lse,
                   int64_t rows, int64_t V, const CrossEntropyConfig& c, int32_t* counts) {
  if (rows == 0) return;
  use_device(q);
  cross_entropy_kernel<<<static_cast<unsigned>(rows), row_threads(V), 0, stream_of(q)>>>(
      logits, targets, loss, lse, V, static_cast<float>(c.label_smoothing), c.ignore_index, counts);
  check_launch("cross_entropy");
}

void cross_entropy_backward(Queue q, const float* logits, const int32_t* targets, const float* lse,
                            float* dlogits, int64_t rows, int64_t V, const CrossEntropyConfig& c,
                            float grad_scale) {
  const float eps = static_cast<float>(c.label_smoothing), uniform = eps / static_cast<float>(V);
  const int32_t ignore = c.ignore_index;
  for_each(q, rows * V, "cross_entropy_backward", [=] __device__(int64_t e) {
    const int64_t r = e / V, j = e % V;
    const int32_t t = targets[r];
    if (t == ignore) {
      dlogits[e] = 0.f;
      return;
    }
    const float target_p = uniform + (j == t ? 1.f - eps : 0.f);
    dlogits[e] = grad_scale * (expf(logits[e] - lse[r]) - target_p);
  });
}

}  // namespace attend::cuda
