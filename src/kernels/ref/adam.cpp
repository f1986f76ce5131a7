// Reference kernels, adam: Adam(W) update. Written for clarity, accumulating in the element type T;
// declared in ref.h.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/ref/ref.h"

namespace attend::ref {

template <typename T>
void adam(T* param, const T* grad, T* m, T* v, int64_t n, const AdamConfig& c, int64_t step) {
  const T b1 = static_cast<T>(c.beta1), b2 = static_cast<T>(c.beta2);
  const T bc1 = T(1) - std::pow(b1, static_cast<T>(step));
  const T bc2 = T(1) - std::pow(b2, static_cast<T>(step));
  const T lr = static_cast<T>(c.lr), eps = static_cast<T>(c.eps);
  const T wd = static_cast<T>(c.weight_decay);
  for (int64_t i = 0; i < n; ++i) {
    m[i] = b1 * m[i] + (T(1) - b1) * grad[i];
    v[i] = b2 * v[i] + (T(1) - b2) * grad[i] * grad[i];
    const T mhat = m[i] / bc1, vhat = v[i] / bc2;
    param[i] -= lr * (mhat / (std::sqrt(vhat) + eps) + wd * param[i]);
  }
}

#define ATTEND_REF_INSTANTIATE(T) \
  template void adam<T>(T*, const T*, T*, T*, int64_t, const AdamConfig&, int64_t);

ATTEND_REF_INSTANTIATE(float)
ATTEND_REF_INSTANTIATE(double)

}  // namespace attend::ref
