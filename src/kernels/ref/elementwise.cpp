// Reference kernels, elementwise: Elementwise ops, activations, dropout and the simple reductions.
// Written for clarity, accumulating in the element type T; declared in ref.h.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/rng.h"
#include "kernels/activations.h"
#include "kernels/ref/ref.h"

namespace attend::ref {
namespace act = kernels::act;

template <typename T>
void add(const T* a, const T* b, T* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
}
template <typename T>
void sub(const T* a, const T* b, T* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] - b[i];
}
template <typename T>
void mul(const T* a, const T* b, T* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] * b[i];
}
template <typename T>
void affine(const T* x, T* y, int64_t n, T alpha, T beta) {
  for (int64_t i = 0; i < n; ++i) y[i] = alpha * x[i] + beta;
}
template <typename T>
void scale(T* x, int64_t n, T alpha) {
  for (int64_t i = 0; i < n; ++i) x[i] *= alpha;
}
template <typename T>
double sum_squares(const T* x, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(x[i]) * static_cast<double>(x[i]);
  return s;
}
template <typename T>
void exp(const T* x, T* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = std::exp(x[i]);
}
template <typename T>
void log(const T* x, T* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = std::log(x[i]);
}
template <typename T>
void rsqrt(const T* x, T* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = T(1) / std::sqrt(x[i]);
}
template <typename T>
void accumulate(const T* x, T* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

template <typename T>
void bias_add(const T* x, const T* b, T* y, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) y[r * cols + c] = x[r * cols + c] + b[c];
}
template <typename T>
void sum_rows(const T* dy, T* db, int64_t rows, int64_t cols) {
  for (int64_t c = 0; c < cols; ++c) db[c] = 0;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) db[c] += dy[r * cols + c];
}
template <typename T>
void sum_last(const T* x, T* y, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r) {
    T acc = 0;
    for (int64_t c = 0; c < cols; ++c) acc += x[r * cols + c];
    y[r] = acc;
  }
}
template <typename T>
void broadcast_last(const T* x, T* y, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) y[r * cols + c] = x[r];
}

template <typename T>
void relu(const T* x, T* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = act::relu(x[i]);
}
template <typename T>
void relu_backward(const T* x, const T* dy, T* dx, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dx[i] = act::relu_grad(x[i], dy[i]);
}
template <typename T>
void gelu(const T* x, T* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = act::gelu(x[i]);
}
template <typename T>
void gelu_backward(const T* x, const T* dy, T* dx, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dx[i] = act::gelu_grad(x[i], dy[i]);
}
template <typename T>
void gelu_tanh(const T* x, T* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = act::gelu_tanh(x[i]);
}
template <typename T>
void gelu_tanh_backward(const T* x, const T* dy, T* dx, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dx[i] = act::gelu_tanh_grad(x[i], dy[i]);
}
template <typename T>
void silu(const T* x, T* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = act::silu(x[i]);
}
template <typename T>
void silu_backward(const T* x, const T* dy, T* dx, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dx[i] = act::silu_grad(x[i], dy[i]);
}

template <typename T>
void dropout(const T* x, T* y, int64_t n, double p, uint64_t seed, uint64_t stream) {
  const T scale = T(1) / (T(1) - static_cast<T>(p));
  for (int64_t i = 0; i < n; ++i)
    y[i] = philox_uniform(seed, stream, static_cast<uint64_t>(i)) >= static_cast<float>(p)
               ? x[i] * scale
               : T(0);
}

#define ATTEND_REF_INSTANTIATE(T)                                      \
  template void add<T>(const T*, const T*, T*, int64_t);               \
  template void sub<T>(const T*, const T*, T*, int64_t);               \
  template void mul<T>(const T*, const T*, T*, int64_t);               \
  template void affine<T>(const T*, T*, int64_t, T, T);                \
  template void scale<T>(T*, int64_t, T);                              \
  template double sum_squares<T>(const T*, int64_t);                   \
  template void exp<T>(const T*, T*, int64_t);                         \
  template void log<T>(const T*, T*, int64_t);                         \
  template void rsqrt<T>(const T*, T*, int64_t);                       \
  template void accumulate<T>(const T*, T*, int64_t);                  \
  template void bias_add<T>(const T*, const T*, T*, int64_t, int64_t); \
  template void sum_rows<T>(const T*, T*, int64_t, int64_t);           \
  template void sum_last<T>(const T*, T*, int64_t, int64_t);           \
  template void broadcast_last<T>(const T*, T*, int64_t, int64_t);     \
  template void relu<T>(const T*, T*, int64_t);                        \
  template void relu_backward<T>(const T*, const T*, T*, int64_t);     \
  template void gelu<T>(const T*, T*, int64_t);                        \
  template void gelu_backward<T>(const T*, const T*, T*, int64_t);     \
  template void gelu_tanh<T>(const T*, T*, int64_t);                   \
  template void gelu_tanh_backward<T>(const T*, const T*, T*, int64_t); \
  template void silu<T>(const T*, T*, int64_t);                        \
  template void silu_backward<T>(const T*, const T*, T*, int64_t);     \
  template void dropout<T>(const T*, T*, int64_t, double, uint64_t, uint64_t);

ATTEND_REF_INSTANTIATE(float)
ATTEND_REF_INSTANTIATE(double)

}  // namespace attend::ref
