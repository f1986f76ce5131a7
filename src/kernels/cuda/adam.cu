// The Adam(W) update on CUDA: one thread per element, the update kernels::AdamStep::apply that
// the CPU kernel also runs.
#include "kernels/cuda/launch.cuh"

namespace attend::cuda {

void adam(Queue q, float* param, const float* grad, float* m, float* v, int64_t n,
          const AdamConfig& c, int64_t step) {
  const kernels::AdamStep a = kernels::AdamStep::make(c, step);
  for_each(q, n, "adam", [=] __device__(int64_t i) { a.apply(param[i], grad[i], m[i], v[i]); });
}

}  // namespace attend::cuda
