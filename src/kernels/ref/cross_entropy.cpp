// Reference kernels, cross entropy: Label-smoothed cross-entropy with an ignore index, and its
// backward. Written for clarity, accumulating in the element type T; declared in ref.h.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/ref/ref.h"

namespace attend::ref {

template <typename T>
void cross_entropy(const T* logits, const int32_t* targets, T* loss, T* lse, int64_t rows,
                   int64_t V, const CrossEntropyConfig& c) {
  const T eps = static_cast<T>(c.label_smoothing);
  for (int64_t r = 0; r < rows; ++r) {
    const T* x = logits + r * V;
    const T mx = *std::max_element(x, x + V);
    T sum = 0, sx = 0;
    for (int64_t j = 0; j < V; ++j) {
      sum += std::exp(x[j] - mx);
      sx += x[j];
    }
    lse[r] = mx + std::log(sum);
    if (targets[r] == c.ignore_index) {
      loss[r] = 0;
      continue;
    }
    loss[r] = lse[r] - (T(1) - eps) * x[targets[r]] - eps / static_cast<T>(V) * sx;
  }
}
template <typename T>
void cross_entropy_backward(const T* logits, const int32_t* targets, const T* lse, T* dlogits,
                            int64_t rows, int64_t V, const CrossEntropyConfig& c, T grad_scale) {
  const T eps = static_cast<T>(c.label_smoothing);
  for (int64_t r = 0; r < rows; ++r) {
    T* g = dlogits + r * V;
    if (targets[r] == c.ignore_index) {
      for (int64_t j = 0; j < V; ++j) g[j] = 0;
      continue;
    }
    for (int64_t j = 0; j < V; ++j) {
      const T q = eps / static_cast<T>(V) + (j == targets[r] ? T(1) - eps : T(0));
      g[j] = grad_scale * (std::exp(logits[r * V + j] - lse[r]) - q);
    }
  }
}

#define ATTEND_REF_INSTANTIATE(T)                                                          \
  template void cross_entropy<T>(const T*, const int32_t*, T*, T*, int64_t, int64_t,       \
                                 const CrossEntropyConfig&);                               \
  template void cross_entropy_backward<T>(const T*, const int32_t*, const T*, T*, int64_t, \
                                          int64_t, const CrossEntropyConfig&, T);

ATTEND_REF_INSTANTIATE(float)
ATTEND_REF_INSTANTIATE(double)

}  // namespace attend::ref
