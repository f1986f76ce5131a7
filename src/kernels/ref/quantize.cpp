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

namespace attend::ref {

void gemm_int8(int64_t M, int64_t N, int64_t K, const int8_t* A, const float* sa, const int8_t* W,
               const float* sw, const float* bias, float* C) {
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      int64_t s = 0;
      for (int64_t k = 0; k < K; ++k) s += int64_t{A[m * K + k]} * W[n * K + k];
      C[m * N + n] = static_cast<float>(static_cast<double>(s) * sa[m] * sw[n] +
                                        (bias ? static_cast<double>(bias[n]) : 0.0));
    }
}

}  // namespace attend::ref
