// Reference kernels, embedding: Embedding gather and its scatter-add backward. Written for clarity,
// accumulating in the element type T; declared in ref.h.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/ref/ref.h"

namespace attend::ref {

template <typename T>
void embedding(const int32_t* ids, const T* W, T* out, int64_t n, int64_t D) {
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < D; ++c) out[i * D + c] = W[static_cast<int64_t>(ids[i]) * D + c];
}
template <typename T>
void embedding_backward(const int32_t* ids, const T* dout, T* dW, int64_t n, int64_t D) {
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < D; ++c) dW[static_cast<int64_t>(ids[i]) * D + c] += dout[i * D + c];
}

#define ATTEND_REF_INSTANTIATE(T)                                             \
  template void embedding<T>(const int32_t*, const T*, T*, int64_t, int64_t); \
  template void embedding_backward<T>(const int32_t*, const T*, T*, int64_t, int64_t);

ATTEND_REF_INSTANTIATE(float)
ATTEND_REF_INSTANTIATE(double)

}  // namespace attend::ref
