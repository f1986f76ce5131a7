// Elementwise fp32 kernels: each is a multiversioned contiguous-range loop, run over chunks of
// the thread pool. kGrain keeps tiny tensors on one thread (a wake-up costs ~ a few µs).
// GCC 12's AVX-512 intrinsic headers trip -Wmaybe-uninitialized on their own undefined
// pass-through operands (a known false positive).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "core/rng.h"
#include "core/thread_pool.h"
#include "kernels/activations.h"
#include "kernels/cpu/cpu.h"
#include "kernels/cpu/vec_math.h"
#include "kernels/ref/ref.h"

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
    for (int64_t i = s; i < e; ++i) y[i] = kernels::act::gelu(x[i]);
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
void gelu_tanh(const float* x, float* y, int64_t n) {
  parallel_for(n, kGrain / 8, [&](int64_t s, int64_t e) {
    for (int64_t i = s; i < e; ++i) y[i] = kernels::act::gelu_tanh(x[i]);
  });
}
void gelu_tanh_backward(const float* x, const float* dy, float* dx, int64_t n) {
  parallel_for(n, kGrain / 8, [&](int64_t s, int64_t e) {
    for (int64_t i = s; i < e; ++i) dx[i] = kernels::act::gelu_tanh_grad(x[i], dy[i]);
  });
}
void silu(const float* x, float* y, int64_t n) {
  parallel_for(n, kGrain / 8, [&](int64_t s, int64_t e) {
    for (int64_t i = s; i < e; ++i) y[i] = kernels::act::silu(x[i]);
  });
}
void silu_backward(const float* x, const float* dy, float* dx, int64_t n) {
  parallel_for(n, kGrain / 8, [&](int64_t s, int64_t e) {
    for (int64_t i = s; i < e; ++i) dx[i] = kernels::act::silu_grad(x[i], dy[i]);
  });
}
namespace {

// Philox4x32-10 for 16 consecutive counters at once, written lane-wise so the compiler
// vectorises it (vpmuludq on AVX-512): the same bits as philox4x32(), ~8x fewer cycles.
constexpr int kLanes = 16;
ATTEND_MULTIVERSION void dropout_blocks(const float* x, float* y, int64_t n, float pf, float scale,
                                        uint64_t seed, uint64_t stream, int64_t blk0, int64_t blk1) {
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  for (int64_t base = blk0; base < blk1; base += kLanes) {
    uint32_t c0[kLanes], c1[kLanes], c2[kLanes], c3[kLanes];
    for (int l = 0; l < kLanes; ++l) {
      const uint64_t lo = static_cast<uint64_t>(base + l);
      c0[l] = static_cast<uint32_t>(lo);
      c1[l] = static_cast<uint32_t>(lo >> 32);
      c2[l] = static_cast<uint32_t>(stream);
      c3[l] = static_cast<uint32_t>(stream >> 32);
    }
    uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
    for (int round = 0; round < 10; ++round) {
      for (int l = 0; l < kLanes; ++l) {
        const uint64_t p0 = static_cast<uint64_t>(kM0) * c0[l];
        const uint64_t p1 = static_cast<uint64_t>(kM1) * c2[l];
        const uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1[l] ^ k0;
        const uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c3[l] ^ k1;
        c1[l] = static_cast<uint32_t>(p1);
        c3[l] = static_cast<uint32_t>(p0);
        c0[l] = n0;
        c2[l] = n2;
      }
      k0 += kW0;
      k1 += kW1;
    }
    uint32_t bits[4 * kLanes];  // element order: block l gives elements 4l .. 4l+3
    for (int l = 0; l < kLanes; ++l) {
      bits[4 * l] = c0[l];
      bits[4 * l + 1] = c1[l];
      bits[4 * l + 2] = c2[l];
      bits[4 * l + 3] = c3[l];
    }
    const int64_t first = base * 4;
    const int64_t count = std::min<int64_t>({4 * kLanes, n - first, (blk1 - base) * 4});
    for (int64_t j = 0; j < count; ++j)
      y[first + j] = uniform_from_bits(bits[j]) >= pf ? x[first + j] * scale : 0.f;
  }
}

__attribute__((target("avx512f"), always_inline)) inline void mulhilo(__m512i a, __m512i m,
                                                                       __m512i* hi, __m512i* lo) {
  const __mmask16 odd = 0xAAAA;
  const __m512i pe = _mm512_mul_epu32(a, m);                         // even lanes, 64-bit
  const __m512i po = _mm512_mul_epu32(_mm512_srli_epi64(a, 32), m);  // odd lanes, 64-bit
  *hi = _mm512_mask_blend_epi32(odd, _mm512_srli_epi64(pe, 32), po);
  *lo = _mm512_mask_blend_epi32(odd, pe, _mm512_slli_epi64(po, 32));
}

// The same as dropout_blocks with AVX-512 integer products: vpmuludq gives the 64-bit
// products of the even 32-bit lanes, so even and odd lanes are multiplied separately and the
// high/low halves blended back together.
__attribute__((target("avx512f"))) void dropout_blocks_avx512(
    const float* x, float* y, int64_t n, float pf, float scale, uint64_t seed, uint64_t stream,
    int64_t blk0, int64_t blk1) {
  const __m512i m0 = _mm512_set1_epi32(static_cast<int>(0xD2511F53u));
  const __m512i m1 = _mm512_set1_epi32(static_cast<int>(0xCD9E8D57u));
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512 vp = _mm512_set1_ps(pf), vs = _mm512_set1_ps(scale);
  for (int64_t base = blk0; base < blk1; base += kLanes) {
    // Counters base + l (< 2^32 blocks per stream in practice; the high word is kept exact).
    const uint64_t lo64 = static_cast<uint64_t>(base);
    __m512i c0 = _mm512_add_epi32(_mm512_set1_epi32(static_cast<int>(static_cast<uint32_t>(lo64))), lane);
    // Carry into the high word for lanes that wrapped past 2^32.
    const __mmask16 wrapped = _mm512_cmplt_epu32_mask(c0, _mm512_set1_epi32(static_cast<int>(static_cast<uint32_t>(lo64))));
    __m512i c1 = _mm512_mask_add_epi32(_mm512_set1_epi32(static_cast<int>(static_cast<uint32_t>(lo64 >> 32))),
                                       wrapped, _mm512_set1_epi32(static_cast<int>(static_cast<uint32_t>(lo64 >> 32))),
                                       _mm512_set1_epi32(1));
    __m512i c2 = _mm512_set1_epi32(static_cast<int>(static_cast<uint32_t>(stream)));
    __m512i c3 = _mm512_set1_epi32(static_cast<int>(static_cast<uint32_t>(stream >> 32)));
    uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
    for (int round = 0; round < 10; ++round) {
      __m512i hi0, lo0, hi1, lo1;
      mulhilo(c0, m0, &hi0, &lo0);
      mulhilo(c2, m1, &hi1, &lo1);
      const __m512i n0 = _mm512_xor_si512(_mm512_xor_si512(hi1, c1), _mm512_set1_epi32(static_cast<int>(k0)));
      const __m512i n2 = _mm512_xor_si512(_mm512_xor_si512(hi0, c3), _mm512_set1_epi32(static_cast<int>(k1)));
      c1 = lo1;
      c3 = lo0;
      c0 = n0;
      c2 = n2;
      k0 += 0x9E3779B9u;
      k1 += 0xBB67AE85u;
    }
    alignas(64) uint32_t r[4][kLanes];
    _mm512_store_si512(r[0], c0);
    _mm512_store_si512(r[1], c1);
    _mm512_store_si512(r[2], c2);
    _mm512_store_si512(r[3], c3);
    alignas(64) uint32_t bits[4 * kLanes];
    for (int l = 0; l < kLanes; ++l)
      for (int k = 0; k < 4; ++k) bits[4 * l + k] = r[k][l];
    const int64_t first = base * 4;
    const int64_t count = std::min<int64_t>({4 * kLanes, n - first, (blk1 - base) * 4});
    if (count == 4 * kLanes) {
      for (int j = 0; j < 4 * kLanes; j += 16) {
        const __m512i b = _mm512_srli_epi32(_mm512_load_si512(bits + j), 8);
        const __m512 u = _mm512_mul_ps(_mm512_cvtepi32_ps(b), _mm512_set1_ps(0x1p-24f));
        const __mmask16 keep = _mm512_cmp_ps_mask(u, vp, _CMP_GE_OQ);
        _mm512_storeu_ps(y + first + j, _mm512_maskz_mul_ps(keep, _mm512_loadu_ps(x + first + j), vs));
      }
    } else {
      for (int64_t j = 0; j < count; ++j)
        y[first + j] = uniform_from_bits(bits[j]) >= pf ? x[first + j] * scale : 0.f;
    }
  }
}

}  // namespace

void dropout(const float* x, float* y, int64_t n, double p, uint64_t seed, uint64_t stream) {
  const float scale = 1.f / (1.f - static_cast<float>(p));
  const float pf = static_cast<float>(p);
  const bool avx512 = has_avx512();
  // One Philox block gives four uniforms: chunk boundaries are aligned to 4 elements.
  parallel_for((n + 3) / 4, kGrain / 4, [&](int64_t s, int64_t e) {
    if (avx512) dropout_blocks_avx512(x, y, n, pf, scale, seed, stream, s, e);
    else dropout_blocks(x, y, n, pf, scale, seed, stream, s, e);
  });
}

// The reference loops on purpose: these run off the training step's hot path (the optimiser's
// norm, scalar reductions, the decoding step's small tensors), where a vectorised copy would add
// code without measurable time.
void sub(const float* a, const float* b, float* y, int64_t n) { ref::sub(a, b, y, n); }
void exp(const float* x, float* y, int64_t n) { ref::exp(x, y, n); }
void log(const float* x, float* y, int64_t n) { ref::log(x, y, n); }
void rsqrt(const float* x, float* y, int64_t n) { ref::rsqrt(x, y, n); }
void scale(float* x, int64_t n, float alpha) { ref::scale(x, n, alpha); }
double sum_squares(const float* x, int64_t n) { return ref::sum_squares(x, n); }
void sum_last(const float* x, float* y, int64_t rows, int64_t cols) {
  ref::sum_last(x, y, rows, cols);
}
void broadcast_last(const float* x, float* y, int64_t rows, int64_t cols) {
  ref::broadcast_last(x, y, rows, cols);
}
double sum(const float* x, int64_t n) {
  double acc = 0.0;  // a double accumulator: the sum of a large tensor stays exact to fp32
  for (int64_t i = 0; i < n; ++i) acc += x[i];
  return acc;
}

}  // namespace attend::cpu
