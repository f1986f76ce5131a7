// Reference symmetric per-row int8 quantization (see ref.h).
#include <algorithm>
#include <cmath>

#include "kernels/ref/ref.h"

namespace attend::ref {

template <typename T>
int64_t quantize_rows(const T* x, int8_t* q, T* scales, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * cols;
    T m = 0;
    for (int64_t c = 0; c < cols; ++c) {
      if (!std::isfinite(xr[c])) return r;
      m = std::max<T>(m, std::abs(xr[c]));
    }
    const T s = m / T(127);
    scales[r] = s;
    for (int64_t c = 0; c < cols; ++c)
      q[r * cols + c] =
          s == T(0)
              ? int8_t{0}
              : static_cast<int8_t>(std::clamp<T>(std::nearbyint(xr[c] / s), T(-127), T(127)));
  }
  return -1;
}

template <typename T>
void dequantize_rows(const int8_t* q, const T* scales, T* y, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      y[r * cols + c] = static_cast<T>(q[r * cols + c]) * scales[r];
}

#define ATTEND_REF_INSTANTIATE(T)                                             \
  template int64_t quantize_rows<T>(const T*, int8_t*, T*, int64_t, int64_t); \
  template void dequantize_rows<T>(const int8_t*, const T*, T*, int64_t, int64_t);

ATTEND_REF_INSTANTIATE(float)
ATTEND_REF_INSTANTIATE(double)

}  // namespace attend::ref
