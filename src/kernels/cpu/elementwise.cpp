// Elementwise fp32 kernels: each is a multiversioned contiguous-range loop, run over chunks of
// the thread pool. kGrain keeps tiny tensors on one thread (a wake-up costs ~ a few µs).
#include <cmath>

#include "core/rng.h"
#include "core/thread_pool.h"
#include "kernels/cpu/cpu.h"
#include "kernels/cpu/vec_math.h"

namespace attend::cpu {
namespace {

constexpr int64_t kGrain = 1 << 15;

ATTEND_MULTIVERSION void add_range(const float* a, const float* b, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
}
ATTEND_MULTIVERSION void accumulate_range(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}
ATTEND_MULTIVERSION void affine_range(const float* x, float* y, int64_t n, float a, float b) {
  for (int64_t i = 0; i < n; ++i) y[i] = a * x[i] + b;
}
ATTEND_MULTIVERSION void mul_range(const float* a, const float* b, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] * b[i];
}
ATTEND_MULTIVERSION void bias_add_rows(const float* x, const float* b, float* y, int64_t rows,
                                       int64_t cols) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) y[r * cols + c] = x[r * cols + c] + b[c];
}
ATTEND_MULTIVERSION void sum_rows_cols(const float* dy, float* db, int64_t rows, int64_t cols,
                                       int64_t stride) {
  for (int64_t c = 0; c < cols; ++c) db[c] = 0.f;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) db[c] += dy[r * stride + c];
}
ATTEND_MULTIVERSION void relu_range(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] > 0.f ? x[i] : 0.f;
}
ATTEND_MULTIVERSION void relu_backward_range(const float* x, const float* dy, float* dx,
                                             int64_t n) {
  for (int64_t i = 0; i < n; ++i) dx[i] = x[i] > 0.f ? dy[i] : 0.f;
}

}  // namespace

void add(const float* a, const float* b, float* y, int64_t n) {
  parallel_for(n, kGrain, [&](int64_t s, int64_t e) { add_range(a + s, b + s, y + s, e - s); });
}
void accumulate(const float* x, float* y, int64_t n) {
  parallel_for(n, kGrain, [&](int64_t s, int64_t e) { accumulate_range(x + s, y + s, e - s); });
}
void affine(const float* x, float* y, int64_t n, float alpha, float beta) {
  parallel_for(n, kGrain,
               [&](int64_t s, int64_t e) { affine_range(x + s, y + s, e - s, alpha, beta); });
}
void mul(const float* a, const float* b, float* y, int64_t n) {
  parallel_for(n, kGrain, [&](int64_t s, int64_t e) { mul_range(a + s, b + s, y + s, e - s); });
}
void bias_add(const float* x, const float* b, float* y, int64_t rows, int64_t cols) {
  parallel_for(rows, std::max<int64_t>(1, kGrain / std::max<int64_t>(cols, 1)),
               [&](int64_t s, int64_t e) {
                 bias_add_rows(x + s * cols, b, y + s * cols, e - s, cols);
               });
}
void sum_rows(const float* dy, float* db, int64_t rows, int64_t cols) {
  // Split the columns across threads: each thread owns its output entries (no reduction step).
  parallel_for(cols, 64, [&](int64_t s, int64_t e) {
    sum_rows_cols(dy + s, db + s, rows, e - s, cols);
  });
}
void relu(const float* x, float* y, int64_t n) {
  parallel_for(n, kGrain, [&](int64_t s, int64_t e) { relu_range(x + s, y + s, e - s); });
}
void relu_backward(const float* x, const float* dy, float* dx, int64_t n) {
  parallel_for(n, kGrain,
               [&](int64_t s, int64_t e) { relu_backward_range(x + s, dy + s, dx + s, e - s); });
}
void gelu(const float* x, float* y, int64_t n) {
  parallel_for(n, kGrain / 8, [&](int64_t s, int64_t e) {
    for (int64_t i = s; i < e; ++i) y[i] = 0.5f * x[i] * (1.f + std::erf(x[i] * 0.70710678f));
  });
}
void gelu_backward(const float* x, const float* dy, float* dx, int64_t n) {
  parallel_for(n, kGrain / 8, [&](int64_t s, int64_t e) {
    for (int64_t i = s; i < e; ++i) {
      const float cdf = 0.5f * (1.f + std::erf(x[i] * 0.70710678f));
      const float pdf = 0.39894228f * fast_exp(-0.5f * x[i] * x[i]);
      dx[i] = dy[i] * (cdf + x[i] * pdf);
    }
  });
}
void dropout(const float* x, float* y, int64_t n, double p, uint64_t seed, uint64_t stream) {
  const float scale = 1.f / (1.f - static_cast<float>(p));
  const float pf = static_cast<float>(p);
  // One Philox block gives four uniforms: chunk boundaries are aligned to 4 elements.
  parallel_for((n + 3) / 4, kGrain / 4, [&](int64_t s, int64_t e) {
    for (int64_t blk = s; blk < e; ++blk) {
      const auto r = philox4x32(seed, stream, static_cast<uint64_t>(blk));
      for (int64_t k = 0; k < 4; ++k) {
        const int64_t i = blk * 4 + k;
        if (i >= n) break;
        y[i] = uniform_from_bits(r[k]) >= pf ? x[i] * scale : 0.f;
      }
    }
  });
}

}  // namespace attend::cpu
