// Adam(W) update, fp32, bias-corrected; one pass over param, grad and both moments.
#include <cmath>

#include "core/thread_pool.h"
#include "kernels/cpu/cpu.h"
#include "kernels/cpu/vec_math.h"

namespace attend::cpu {
namespace {
ATTEND_MULTIVERSION void adam_range(float* p, const float* g, float* m, float* v, int64_t n,
                                    float b1, float b2, float step_size, float inv_sqrt_bc2,
                                    float eps, float lr_wd) {
  for (int64_t i = 0; i < n; ++i) {
    m[i] = b1 * m[i] + (1.f - b1) * g[i];
    v[i] = b2 * v[i] + (1.f - b2) * g[i] * g[i];
    // lr * mhat / (sqrt(vhat) + eps) with mhat = m / bc1, vhat = v / bc2
    p[i] -= step_size * m[i] / (std::sqrt(v[i]) * inv_sqrt_bc2 + eps) + lr_wd * p[i];
  }
}
}  // namespace

void adam(float* param, const float* grad, float* m, float* v, int64_t n, const AdamConfig& c,
          int64_t step) {
  const double bc1 = 1.0 - std::pow(c.beta1, static_cast<double>(step));
  const double bc2 = 1.0 - std::pow(c.beta2, static_cast<double>(step));
  const float step_size = static_cast<float>(c.lr / bc1);
  const float inv_sqrt_bc2 = static_cast<float>(1.0 / std::sqrt(bc2));
  parallel_for(n, 1 << 15, [&](int64_t s, int64_t e) {
    adam_range(param + s, grad + s, m + s, v + s, e - s, static_cast<float>(c.beta1),
               static_cast<float>(c.beta2), step_size, inv_sqrt_bc2, static_cast<float>(c.eps),
               static_cast<float>(c.lr * c.weight_decay));
  });
}

}  // namespace attend::cpu
