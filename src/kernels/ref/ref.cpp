// Reference kernels (see ref.h): written for clarity, accumulate in the element type T.
#include "kernels/ref/ref.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/rng.h"

namespace attend::ref {

template <typename T>
void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
          const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i) {
    for (int64_t j = 0; j < N; ++j) {
      T acc = 0;
      for (int64_t k = 0; k < K; ++k) {
        const T a = ta ? A[k * lda + i] : A[i * lda + k];
        const T b = tb ? B[j * ldb + k] : B[k * ldb + j];
        acc += a * b;
      }
      T& c = C[i * ldc + j];
      c = alpha * acc + (beta == T(0) ? T(0) : beta * c);
    }
  }
}

template <typename T> void add(const T* a, const T* b, T* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
}
template <typename T> void sub(const T* a, const T* b, T* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] - b[i];
}
template <typename T> void mul(const T* a, const T* b, T* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] * b[i];
}
template <typename T> void affine(const T* x, T* y, int64_t n, T alpha, T beta) {
  for (int64_t i = 0; i < n; ++i) y[i] = alpha * x[i] + beta;
}
template <typename T> void scale(T* x, int64_t n, T alpha) {
  for (int64_t i = 0; i < n; ++i) x[i] *= alpha;
}
template <typename T> double sum_squares(const T* x, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(x[i]) * static_cast<double>(x[i]);
  return s;
}
template <typename T> void exp(const T* x, T* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = std::exp(x[i]);
}
template <typename T> void log(const T* x, T* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = std::log(x[i]);
}
template <typename T> void rsqrt(const T* x, T* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = T(1) / std::sqrt(x[i]);
}
template <typename T> void accumulate(const T* x, T* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

template <typename T> void bias_add(const T* x, const T* b, T* y, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) y[r * cols + c] = x[r * cols + c] + b[c];
}
template <typename T> void sum_rows(const T* dy, T* db, int64_t rows, int64_t cols) {
  for (int64_t c = 0; c < cols; ++c) db[c] = 0;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) db[c] += dy[r * cols + c];
}
template <typename T> void sum_last(const T* x, T* y, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r) {
    T acc = 0;
    for (int64_t c = 0; c < cols; ++c) acc += x[r * cols + c];
    y[r] = acc;
  }
}
template <typename T> void broadcast_last(const T* x, T* y, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) y[r * cols + c] = x[r];
}

template <typename T> void relu(const T* x, T* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] > T(0) ? x[i] : T(0);
}
template <typename T> void relu_backward(const T* x, const T* dy, T* dx, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dx[i] = x[i] > T(0) ? dy[i] : T(0);
}
template <typename T> void gelu(const T* x, T* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = T(0.5) * x[i] * (T(1) + std::erf(x[i] / std::sqrt(T(2))));
}
template <typename T> void gelu_backward(const T* x, const T* dy, T* dx, int64_t n) {
  const T inv_sqrt_2pi = T(0.3989422804014327);
  for (int64_t i = 0; i < n; ++i) {
    const T cdf = T(0.5) * (T(1) + std::erf(x[i] / std::sqrt(T(2))));
    const T pdf = inv_sqrt_2pi * std::exp(T(-0.5) * x[i] * x[i]);
    dx[i] = dy[i] * (cdf + x[i] * pdf);
  }
}

template <typename T>
void dropout(const T* x, T* y, int64_t n, double p, uint64_t seed, uint64_t stream) {
  const T scale = T(1) / (T(1) - static_cast<T>(p));
  for (int64_t i = 0; i < n; ++i)
    y[i] = philox_uniform(seed, stream, static_cast<uint64_t>(i)) >= static_cast<float>(p)
               ? x[i] * scale
               : T(0);
}

template <typename T> void softmax(const T* x, T* y, const AttnDims& d, const Mask& m) {
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
    for (int64_t c = 0; c < cols; ++c) dx[r * cols + c] = y[r * cols + c] * (dy[r * cols + c] - dot);
  }
}
namespace {
template <typename T> T row_logsumexp(const T* xr, int64_t cols) {
  const T mx = *std::max_element(xr, xr + cols);
  T sum = 0;
  for (int64_t c = 0; c < cols; ++c) sum += std::exp(xr[c] - mx);
  return mx + std::log(sum);
}
}  // namespace
template <typename T> void log_softmax(const T* x, T* y, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * cols;
    const T lse = row_logsumexp(xr, cols);
    for (int64_t c = 0; c < cols; ++c) y[r * cols + c] = xr[c] - lse;
  }
}
template <typename T> void logsumexp(const T* x, T* y, int64_t rows, int64_t cols) {
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

template <typename T>
void layer_norm(const T* x, const T* r, const T* gamma, const T* beta, T* y, T* s_out, T* mean,
                T* rstd, int64_t rows, int64_t cols, double eps) {
  std::vector<T> s(static_cast<size_t>(cols));
  for (int64_t i = 0; i < rows; ++i) {
    T mu = 0;
    for (int64_t c = 0; c < cols; ++c) {
      s[c] = x[i * cols + c] + (r ? r[i * cols + c] : T(0));
      mu += s[c];
    }
    mu /= static_cast<T>(cols);
    T var = 0;
    for (int64_t c = 0; c < cols; ++c) var += (s[c] - mu) * (s[c] - mu);
    var /= static_cast<T>(cols);
    const T rs = T(1) / std::sqrt(var + static_cast<T>(eps));
    for (int64_t c = 0; c < cols; ++c) {
      y[i * cols + c] = (s[c] - mu) * rs * gamma[c] + beta[c];
      if (s_out) s_out[i * cols + c] = s[c];
    }
    mean[i] = mu;
    rstd[i] = rs;
  }
}
template <typename T>
void layer_norm_backward(const T* dy, const T* s, const T* gamma, const T* mean, const T* rstd,
                         T* ds, T* dgamma, T* dbeta, int64_t rows, int64_t cols) {
  for (int64_t c = 0; c < cols; ++c) dgamma[c] = dbeta[c] = 0;
  for (int64_t i = 0; i < rows; ++i) {
    // xhat = (s - mean) * rstd;  g = dy * gamma
    // ds = rstd * (g - mean(g) - xhat * mean(g * xhat))
    T mg = 0, mgx = 0;
    for (int64_t c = 0; c < cols; ++c) {
      const T xh = (s[i * cols + c] - mean[i]) * rstd[i];
      const T g = dy[i * cols + c] * gamma[c];
      mg += g;
      mgx += g * xh;
      dgamma[c] += dy[i * cols + c] * xh;
      dbeta[c] += dy[i * cols + c];
    }
    mg /= static_cast<T>(cols);
    mgx /= static_cast<T>(cols);
    for (int64_t c = 0; c < cols; ++c) {
      const T xh = (s[i * cols + c] - mean[i]) * rstd[i];
      const T g = dy[i * cols + c] * gamma[c];
      ds[i * cols + c] = rstd[i] * (g - mg - xh * mgx);
    }
  }
}

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

template <typename T>
void attention(const T* q, const T* k, const T* v, T* o, T* p, const AttnDims& d, const Mask& m,
               double scale) {
  const T sc = static_cast<T>(scale);
  for (int64_t bh = 0; bh < d.B * d.H; ++bh) {
    const T* qb = q + bh * d.Tq * d.Dh;
    const T* kb = k + bh * d.Tk * d.Dh;
    T* pb = p + bh * d.Tq * d.Tk;
    for (int64_t i = 0; i < d.Tq; ++i)
      for (int64_t j = 0; j < d.Tk; ++j) {
        T acc = 0;
        for (int64_t c = 0; c < d.Dh; ++c) acc += qb[i * d.Dh + c] * kb[j * d.Dh + c];
        pb[i * d.Tk + j] = acc * sc;
      }
  }
  softmax(p, p, d, m);  // in place: each row is read fully before it is written
  for (int64_t bh = 0; bh < d.B * d.H; ++bh)
    gemm<T>(false, false, d.Tq, d.Dh, d.Tk, T(1), p + bh * d.Tq * d.Tk, d.Tk, v + bh * d.Tk * d.Dh,
            d.Dh, T(0), o + bh * d.Tq * d.Dh, d.Dh);
}

template <typename T>
void attention_backward(const T* q, const T* k, const T* v, const T* p, const T* dout, T* dq,
                        T* dk, T* dv, const AttnDims& d, double scale) {
  std::vector<T> dp(static_cast<size_t>(d.Tq * d.Tk)), ds(dp.size());
  for (int64_t bh = 0; bh < d.B * d.H; ++bh) {
    const T* pb = p + bh * d.Tq * d.Tk;
    const T* dob = dout + bh * d.Tq * d.Dh;
    // dv = p^T do;  dp = do v^T;  ds = softmax_backward(p, dp) * scale;  dq = ds k;  dk = ds^T q
    gemm<T>(true, false, d.Tk, d.Dh, d.Tq, T(1), pb, d.Tk, dob, d.Dh, T(0), dv + bh * d.Tk * d.Dh,
            d.Dh);
    gemm<T>(false, true, d.Tq, d.Tk, d.Dh, T(1), dob, d.Dh, v + bh * d.Tk * d.Dh, d.Dh, T(0),
            dp.data(), d.Tk);
    softmax_backward(pb, dp.data(), ds.data(), d.Tq, d.Tk);
    const T sc = static_cast<T>(scale);
    gemm<T>(false, false, d.Tq, d.Dh, d.Tk, sc, ds.data(), d.Tk, k + bh * d.Tk * d.Dh, d.Dh, T(0),
            dq + bh * d.Tq * d.Dh, d.Dh);
    gemm<T>(true, false, d.Tk, d.Dh, d.Tq, sc, ds.data(), d.Tk, q + bh * d.Tq * d.Dh, d.Dh, T(0),
            dk + bh * d.Tk * d.Dh, d.Dh);
  }
}

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

#define ATTEND_REF_INSTANTIATE(T)                                                              \
  template void gemm<T>(bool, bool, int64_t, int64_t, int64_t, T, const T*, int64_t, const T*, \
                        int64_t, T, T*, int64_t);                                              \
  template void add<T>(const T*, const T*, T*, int64_t);                                      \
  template void sub<T>(const T*, const T*, T*, int64_t);                                      \
  template void mul<T>(const T*, const T*, T*, int64_t);                                      \
  template void affine<T>(const T*, T*, int64_t, T, T);                                       \
  template void scale<T>(T*, int64_t, T);                                                     \
  template double sum_squares<T>(const T*, int64_t);                                          \
  template void exp<T>(const T*, T*, int64_t);                                                \
  template void log<T>(const T*, T*, int64_t);                                                \
  template void rsqrt<T>(const T*, T*, int64_t);                                              \
  template void accumulate<T>(const T*, T*, int64_t);                                         \
  template void bias_add<T>(const T*, const T*, T*, int64_t, int64_t);                        \
  template void sum_rows<T>(const T*, T*, int64_t, int64_t);                                  \
  template void sum_last<T>(const T*, T*, int64_t, int64_t);                                  \
  template void broadcast_last<T>(const T*, T*, int64_t, int64_t);                            \
  template void relu<T>(const T*, T*, int64_t);                                               \
  template void relu_backward<T>(const T*, const T*, T*, int64_t);                            \
  template void gelu<T>(const T*, T*, int64_t);                                               \
  template void gelu_backward<T>(const T*, const T*, T*, int64_t);                            \
  template void dropout<T>(const T*, T*, int64_t, double, uint64_t, uint64_t);                \
  template void softmax<T>(const T*, T*, const AttnDims&, const Mask&);                       \
  template void softmax_backward<T>(const T*, const T*, T*, int64_t, int64_t);                \
  template void log_softmax<T>(const T*, T*, int64_t, int64_t);                               \
  template void logsumexp<T>(const T*, T*, int64_t, int64_t);                                 \
  template void log_softmax_backward<T>(const T*, const T*, T*, int64_t, int64_t);            \
  template void layer_norm<T>(const T*, const T*, const T*, const T*, T*, T*, T*, T*, int64_t, \
                              int64_t, double);                                               \
  template void layer_norm_backward<T>(const T*, const T*, const T*, const T*, const T*, T*,  \
                                       T*, T*, int64_t, int64_t);                             \
  template void embedding<T>(const int32_t*, const T*, T*, int64_t, int64_t);                 \
  template void embedding_backward<T>(const int32_t*, const T*, T*, int64_t, int64_t);        \
  template void attention<T>(const T*, const T*, const T*, T*, T*, const AttnDims&,           \
                             const Mask&, double);                                            \
  template void attention_backward<T>(const T*, const T*, const T*, const T*, const T*, T*,   \
                                      T*, T*, const AttnDims&, double);                       \
  template void cross_entropy<T>(const T*, const int32_t*, T*, T*, int64_t, int64_t,          \
                                 const CrossEntropyConfig&);                                  \
  template void cross_entropy_backward<T>(const T*, const int32_t*, const T*, T*, int64_t,    \
                                          int64_t, const CrossEntropyConfig&, T);             \
  template void adam<T>(T*, const T*, T*, T*, int64_t, const AdamConfig&, int64_t);

ATTEND_REF_INSTANTIATE(float)
ATTEND_REF_INSTANTIATE(double)

}  // namespace attend::ref
