// Symmetric per-row int8 quantization, fp32 (see cpu.h): rows in parallel, each row's maximum
// and rounding vectorised. Same results as ref::quantize_rows (same divisions, same rounding).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/cpu/cpu.h"
#include "kernels/cpu/vec_math.h"

namespace attend::cpu {
namespace {

// max |x| over a row; *bad is set when the row holds an infinity or a NaN (exponent bits all
// ones: checked on the bits, which -fassociative-math cannot fold away).
ATTEND_MULTIVERSION float row_absmax(const float* x, int64_t n, bool* bad) {
  float m = 0.f;
  uint32_t special = 0;
  for (int64_t c = 0; c < n; ++c) {
    m = std::max(m, std::abs(x[c]));
    uint32_t u;
    std::memcpy(&u, x + c, 4);
    special |= (u & 0x7f800000u) == 0x7f800000u;
  }
  *bad = special != 0;
  return m;
}

ATTEND_MULTIVERSION void row_quantize(const float* x, int8_t* q, int64_t n, float s) {
  for (int64_t c = 0; c < n; ++c)
    q[c] = static_cast<int8_t>(std::clamp(std::nearbyint(x[c] / s), -127.f, 127.f));
}

ATTEND_MULTIVERSION void row_dequantize(const int8_t* q, float s, float* y, int64_t n) {
  for (int64_t c = 0; c < n; ++c) y[c] = static_cast<float>(q[c]) * s;
}

}  // namespace

int64_t quantize_rows(const float* x, int8_t* q, float* scales, int64_t rows, int64_t cols) {
  std::vector<char> bad(static_cast<size_t>(rows), 0);
  parallel_for(rows, row_grain(cols), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      bool b = false;
      const float m = row_absmax(x + r * cols, cols, &b);
      if (b) {
        bad[static_cast<size_t>(r)] = 1;
        continue;
      }
      const float s = m / 127.f;
      scales[r] = s;
      if (s == 0.f)
        std::fill_n(q + r * cols, cols, int8_t{0});
      else
        row_quantize(x + r * cols, q + r * cols, cols, s);
    }
  });
  for (int64_t r = 0; r < rows; ++r)
    if (bad[static_cast<size_t>(r)]) return r;
  return -1;
}

void dequantize_rows(const int8_t* q, const float* scales, float* y, int64_t rows, int64_t cols) {
  parallel_for(rows, row_grain(cols), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) row_dequantize(q + r * cols, scales[r], y + r * cols, cols);
  });
}

}  // namespace attend::cpu
