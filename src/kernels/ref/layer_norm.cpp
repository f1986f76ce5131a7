// Reference kernels, layer norm: Layer norm (or RMSNorm) with a fused residual, and its backward.
// Written for clarity, accumulating in the element type T; declared in ref.h.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/ref/ref.h"

namespace attend::ref {

template <typename T>
void layer_norm(const T* x, const T* r, const T* gamma, const T* beta, T* y, T* s_out, T* mean,
                T* rstd, int64_t rows, int64_t cols, double eps, bool rms) {
  std::vector<T> s(static_cast<size_t>(cols));
  for (int64_t i = 0; i < rows; ++i) {
    T mu = 0;
    for (int64_t c = 0; c < cols; ++c) {
      s[c] = x[i * cols + c] + (r ? r[i * cols + c] : T(0));
      mu += s[c];
    }
    mu = rms ? T(0) : mu / static_cast<T>(cols);
    T var = 0;
    for (int64_t c = 0; c < cols; ++c) var += (s[c] - mu) * (s[c] - mu);
    var /= static_cast<T>(cols);
    const T rs = T(1) / std::sqrt(var + static_cast<T>(eps));
    for (int64_t c = 0; c < cols; ++c) {
      y[i * cols + c] = (s[c] - mu) * rs * gamma[c] + (beta ? beta[c] : T(0));
      if (s_out) s_out[i * cols + c] = s[c];
    }
    mean[i] = mu;
    rstd[i] = rs;
  }
}
template <typename T>
void layer_norm_backward(const T* dy, const T* s, const T* gamma, const T* mean, const T* rstd,
                         T* ds, T* dgamma, T* dbeta, int64_t rows, int64_t cols, bool rms) {
  for (int64_t c = 0; c < cols; ++c) {
    dgamma[c] = 0;
    if (dbeta) dbeta[c] = 0;
  }
  for (int64_t i = 0; i < rows; ++i) {
    // xhat = (s - mean) * rstd;  g = dy * gamma
    // ds = rstd * (g - mean(g) - xhat * mean(g * xhat)); RMSNorm (mean 0, not subtracted):
    // ds = rstd * (g - xhat * mean(g * xhat))
    T mg = 0, mgx = 0;
    for (int64_t c = 0; c < cols; ++c) {
      const T xh = (s[i * cols + c] - mean[i]) * rstd[i];
      const T g = dy[i * cols + c] * gamma[c];
      mg += g;
      mgx += g * xh;
      dgamma[c] += dy[i * cols + c] * xh;
      if (dbeta) dbeta[c] += dy[i * cols + c];
    }
    mg = rms ? T(0) : mg / static_cast<T>(cols);
    mgx /= static_cast<T>(cols);
    for (int64_t c = 0; c < cols; ++c) {
      const T xh = (s[i * cols + c] - mean[i]) * rstd[i];
      const T g = dy[i * cols + c] * gamma[c];
      ds[i * cols + c] = rstd[i] * (g - mg - xh * mgx);
    }
  }
}

#define ATTEND_REF_INSTANTIATE(T)                                                                \
  template void layer_norm<T>(const T*, const T*, const T*, const T*, T*, T*, T*, T*, int64_t,   \
                              int64_t, double, bool);                                            \
  template void layer_norm_backward<T>(const T*, const T*, const T*, const T*, const T*, T*, T*, \
                                       T*, int64_t, int64_t, bool);

ATTEND_REF_INSTANTIATE(float)
ATTEND_REF_INSTANTIATE(double)

}  // namespace attend::ref
