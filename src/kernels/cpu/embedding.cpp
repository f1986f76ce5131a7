// Embedding lookup and its sparse gradient: rows gathered forward, scattered (+=) backward.
// Backward splits the embedding width across threads so that two threads never write the same
// element, even when an id repeats (deterministic, no atomics).
#include <cstring>

#include "core/thread_pool.h"
#include "core/types.h"
#include "kernels/cpu/cpu.h"
#include "kernels/cpu/vec_math.h"

namespace attend::cpu {
namespace {
ATTEND_MULTIVERSION void add_row(const float* src, float* dst, int64_t n) {
  for (int64_t c = 0; c < n; ++c) dst[c] += src[c];
}
}  // namespace

void embedding(const int32_t* ids, const float* W, float* out, int64_t n, int64_t D) {
  parallel_for(n, row_grain(D), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i)
      std::memcpy(out + i * D, W + static_cast<int64_t>(ids[i]) * D, sizeof(float) * D);
  });
}

void embedding_backward(const int32_t* ids, const float* dout, float* dW, int64_t n, int64_t D) {
  parallel_for(D, 64, [&](int64_t c0, int64_t c1) {
    for (int64_t i = 0; i < n; ++i)
      add_row(dout + i * D + c0, dW + static_cast<int64_t>(ids[i]) * D + c0, c1 - c0);
  });
}

void embedding_bf16(const int32_t* ids, const uint16_t* W, float* out, int64_t n, int64_t D) {
  for (int64_t i = 0; i < n; ++i) {  // exactly the stored values, widened
    const uint16_t* row = W + static_cast<int64_t>(ids[i]) * D;
    for (int64_t d = 0; d < D; ++d) out[i * D + d] = from_bf16(bf16{row[d]});
  }
}

}  // namespace attend::cpu
