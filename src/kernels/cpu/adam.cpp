// Adam(W) update, fp32, bias-corrected; one pass over param, grad and both moments.
#include <cmath>

#include "core/thread_pool.h"
#include "kernels/cpu/cpu.h"
#include "kernels/cpu/vec_math.h"

namespace attend::cpu {
namespace {
ATTEND_MULTIVERSION void adam_range(float* p, const float* g, float* m, float* v, int64_t n,
                                    const kernels::AdamStep& a) {
  for (int64_t i = 0; i < n; ++i) a.apply(p[i], g[i], m[i], v[i]);
}
}  // namespace

void adam(float* param, const float* grad, float* m, float* v, int64_t n, const AdamConfig& c,
          int64_t step) {
  const kernels::AdamStep a = kernels::AdamStep::make(c, step);
  parallel_for(n, 1 << 15, [&](int64_t s, int64_t e) {
    adam_range(param + s, grad + s, m + s, v + s, e - s, a);
  });
}

}  // namespace attend::cpu
