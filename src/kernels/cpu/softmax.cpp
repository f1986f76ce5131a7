// Row softmax kernels (masked softmax over attention scores, log-softmax) and their backward.
#include <algorithm>
#include <cmath>
#include <limits>

#include "core/thread_pool.h"
#include "kernels/cpu/cpu.h"
#include "kernels/cpu/vec_math.h"

namespace attend::cpu {
namespace {

// y[0:n] = softmax(x[0:n]), y[n:cols] = 0.
ATTEND_MULTIVERSION void softmax_row(const float* x, float* y, int64_t n, int64_t cols) {
  const float mx = row_max(x, n);
  float sum = 0.f;
  for (int64_t j = 0; j < n; ++j) {
    y[j] = fast_exp(x[j] - mx);
    sum += y[j];
  }
  const float inv = n > 0 ? 1.f / sum : 0.f;
  for (int64_t j = 0; j < n; ++j) y[j] *= inv;
  for (int64_t j = n; j < cols; ++j) y[j] = 0.f;
}

// General mask (local windows, global tokens): masked entries excluded elementwise.
template <typename Allowed>
void masked_softmax_row(const float* x, float* y, int64_t cols, const Allowed& allowed) {
  float mx = -std::numeric_limits<float>::infinity();
  for (int64_t j = 0; j < cols; ++j)
    if (allowed(j)) mx = std::max(mx, x[j]);
  float sum = 0.f;
  for (int64_t j = 0; j < cols; ++j) {
    y[j] = allowed(j) ? fast_exp(x[j] - mx) : 0.f;
    sum += y[j];
  }
  const float inv = sum > 0.f ? 1.f / sum : 0.f;
  for (int64_t j = 0; j < cols; ++j) y[j] *= inv;
}

ATTEND_MULTIVERSION void softmax_backward_row(const float* y, const float* dy, float* dx,
                                              int64_t cols) {
  float dot = 0.f;
  for (int64_t j = 0; j < cols; ++j) dot += dy[j] * y[j];
  for (int64_t j = 0; j < cols; ++j) dx[j] = y[j] * (dy[j] - dot);
}

ATTEND_MULTIVERSION float logsumexp_row(const float* x, int64_t cols) {
  const float mx = row_max(x, cols);
  float sum = 0.f;
  for (int64_t j = 0; j < cols; ++j) sum += fast_exp(x[j] - mx);
  return mx + std::log(sum);
}

ATTEND_MULTIVERSION void log_softmax_row(const float* x, float* y, int64_t cols) {
  const float lse = logsumexp_row(x, cols);
  for (int64_t j = 0; j < cols; ++j) y[j] = x[j] - lse;
}

ATTEND_MULTIVERSION void log_softmax_backward_row(const float* y, const float* dy, float* dx,
                                                  int64_t cols) {
  float s = 0.f;
  for (int64_t j = 0; j < cols; ++j) s += dy[j];
  for (int64_t j = 0; j < cols; ++j) dx[j] = dy[j] - fast_exp(y[j]) * s;
}

int64_t row_grain(int64_t cols) { return std::max<int64_t>(1, 8192 / std::max<int64_t>(cols, 1)); }

}  // namespace

void softmax(const float* x, float* y, const AttnDims& d, const Mask& m) {
  const int64_t rows = d.B * d.H * d.Tq;
  parallel_for(rows, row_grain(d.Tk), [&](int64_t s, int64_t e) {
    for (int64_t r = s; r < e; ++r) {
      const int64_t b = r / (d.H * d.Tq), i = r % d.Tq;
      if (m.prefix_only()) {
        softmax_row(x + r * d.Tk, y + r * d.Tk, m.limit(b, i, d.Tk), d.Tk);
      } else {
        masked_softmax_row(x + r * d.Tk, y + r * d.Tk, d.Tk, [&](int64_t j) {
          return m.allowed(b, i, j, d.Tk);
        });
      }
    }
  });
}

void softmax_backward(const float* y, const float* dy, float* dx, int64_t rows, int64_t cols) {
  parallel_for(rows, row_grain(cols), [&](int64_t s, int64_t e) {
    for (int64_t r = s; r < e; ++r)
      softmax_backward_row(y + r * cols, dy + r * cols, dx + r * cols, cols);
  });
}

void log_softmax(const float* x, float* y, int64_t rows, int64_t cols) {
  parallel_for(rows, row_grain(cols), [&](int64_t s, int64_t e) {
    for (int64_t r = s; r < e; ++r) log_softmax_row(x + r * cols, y + r * cols, cols);
  });
}

void logsumexp(const float* x, float* y, int64_t rows, int64_t cols) {
  parallel_for(rows, row_grain(cols), [&](int64_t s, int64_t e) {
    for (int64_t r = s; r < e; ++r) y[r] = logsumexp_row(x + r * cols, cols);
  });
}

void log_softmax_backward(const float* y, const float* dy, float* dx, int64_t rows, int64_t cols) {
  parallel_for(rows, row_grain(cols), [&](int64_t s, int64_t e) {
    for (int64_t r = s; r < e; ++r)
      log_softmax_backward_row(y + r * cols, dy + r * cols, dx + r * cols, cols);
  });
}

}  // namespace attend::cpu
