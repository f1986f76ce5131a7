// Reference kernels, softmax: Masked softmax, log-softmax, logsumexp and their backward. Written
// for clarity, accumulating in the element type T; declared in ref.h.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/ref/ref.h"

namespace attend::ref {

template <typename T>
void softmax(const T* x, T* y, const AttnDims& d, const Mask& m) {
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t h = 0; h < d.H; ++h)
      for (int64_t i = 0; i < d.Tq; ++i) {
        const int64_t off = ((b * d.H + h) * d.Tq + i) * d.Tk;
        T mx = -std::numeric_limits<T>::infinity();
        for (int64_t j = 0; j < d.Tk; ++j)
          if (m.allowed(b, i, j, d.Tk)) mx = std::max(mx, x[off + j]);
        T sum = 0;
        for (int64_t j = 0; j < d.Tk; ++j)
          if (m.allowed(b, i, j, d.Tk)) sum += std::exp(x[off + j] - mx);
        for (int64_t j = 0; j < d.Tk; ++j)
          y[off + j] = m.allowed(b, i, j, d.Tk) ? std::exp(x[off + j] - mx) / sum : T(0);
      }
}
template <typename T>
void softmax_backward(const T* y, const T* dy, T* dx, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r) {
    T dot = 0;
    for (int64_t c = 0; c < cols; ++c) dot += dy[r * cols + c] * y[r * cols + c];
    for (int64_t c = 0; c < cols; ++c)
      dx[r * cols + c] = y[r * cols + c] * (dy[r * cols + c] - dot);
  }
}
namespace {
template <typename T>
T row_logsumexp(const T* xr, int64_t cols) {
  const T mx = *std::max_element(xr, xr + cols);
  T sum = 0;
  for (int64_t c = 0; c < cols; ++c) sum += std::exp(xr[c] - mx);
  return mx + std::log(sum);
}
}  // namespace
template <typename T>
void log_softmax(const T* x, T* y, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * cols;
    const T lse = row_logsumexp(xr, cols);
    for (int64_t c = 0; c < cols; ++c) y[r * cols + c] = xr[c] - lse;
  }
}
template <typename T>
void logsumexp(const T* x, T* y, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r) y[r] = row_logsumexp(x + r * cols, cols);
}
template <typename T>
void log_softmax_backward(const T* y, const T* dy, T* dx, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r) {
    T s = 0;
    for (int64_t c = 0; c < cols; ++c) s += dy[r * cols + c];
    for (int64_t c = 0; c < cols; ++c)
      dx[r * cols + c] = dy[r * cols + c] - std::exp(y[r * cols + c]) * s;
  }
}

#define ATTEND_REF_INSTANTIATE(T)                                              \
  template void softmax<T>(const T*, T*, const AttnDims&, const Mask&);        \
  template void softmax_backward<T>(const T*, const T*, T*, int64_t, int64_t); \
  template void log_softmax<T>(const T*, T*, int64_t, int64_t);                \
  template void logsumexp<T>(const T*, T*, int64_t, int64_t);                  \
  template void log_softmax_backward<T>(const T*, const T*, T*, int64_t, int64_t);

ATTEND_REF_INSTANTIATE(float)
ATTEND_REF_INSTANTIATE(double)

}  // namespace attend::ref
