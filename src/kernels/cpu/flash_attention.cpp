// Fused attention: for each (batch, head, query tile) the key tiles are visited with an online
// softmax (running max m, running sum l, rescaled accumulator); only the per-row log-sum-exp is
// saved. Backward (per group of key tiles, FlashAttention-2 order) recomputes P = exp(S - lse)
// and accumulates dK, dV per key tile, dQ in a per-head (or per-work-item) buffer.
//
// All products are C (+)= alpha * A B (or A^T B) with B row-major [K, N]; K and V are transposed
// once per call so that every product has that form.
#include "kernels/cpu/flash_attention.h"

// GCC 12's AVX-512 intrinsics start from _mm512_undefined_ps(), which its flow analysis reports
// as "may be used uninitialized" (GCC bug 105593): a false positive, silenced for this file.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/cpu/vec_math.h"

namespace attend::cpu {
namespace {

using kernels::AttnDims;
using kernels::Mask;
using kernels::ScoreBias;

// ---------------------------------------------------------------- micro-kernels

// C[r, 0:N] = (accumulate ? C[r, 0:N] : 0) + alpha * sum_k A(r, k) B[k, 0:N], r < R, where
// A(r, k) = A[r * a_rs + k * a_ks]: (a_rs, a_ks) = (lda, 1) reads A, (1, lda) reads A^T, so
// products with a transposed left operand need no transpose copy.
template <typename T>
void rows_gemm_generic(int64_t R, int64_t N, int64_t K, T alpha, const T* A, int64_t a_rs,
                       int64_t a_ks, const T* B, int64_t ldb, T* C, int64_t ldc, bool accumulate) {
  for (int64_t r = 0; r < R; ++r) {
    T* c = C + r * ldc;
    if (!accumulate) std::fill(c, c + N, T(0));
    for (int64_t k = 0; k < K; ++k) {
      const T a = alpha * A[r * a_rs + k * a_ks];
      const T* b = B + k * ldb;
      for (int64_t n = 0; n < N; ++n) c[n] += a * b[n];
    }
  }
}

// AVX-512 block: RB rows x NV 16-float vectors of C held in registers over the whole K loop
// (RB 6, NV 4: 24 accumulators + 4 B vectors + 1 broadcast of the 32 zmm registers). Only the
// last vector of a row uses a mask, and only when N is not a multiple of 16 (kMasked).
template <int RB, int NV, bool kMasked>
__attribute__((target("avx512f"), always_inline)) inline void block_avx512(
    int64_t K, float alpha, const float* A, int64_t a_rs, int64_t a_ks, const float* B,
    int64_t ldb, float* C, int64_t ldc, bool accumulate, __mmask16 last) {
  __m512 acc[RB][NV];
  for (int r = 0; r < RB; ++r)
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_setzero_ps();
  for (int64_t k = 0; k < K; ++k) {
    __m512 b[NV];
    for (int v = 0; v < NV; ++v)
      b[v] = (kMasked && v == NV - 1) ? _mm512_maskz_loadu_ps(last, B + k * ldb + 16 * v)
                                      : _mm512_loadu_ps(B + k * ldb + 16 * v);
    for (int r = 0; r < RB; ++r) {
      const __m512 a = _mm512_set1_ps(A[r * a_rs + k * a_ks]);
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_fmadd_ps(a, b[v], acc[r][v]);
    }
  }
  const __m512 va = _mm512_set1_ps(alpha);
  for (int r = 0; r < RB; ++r)
    for (int v = 0; v < NV; ++v) {
      float* c = C + r * ldc + 16 * v;
      if (kMasked && v == NV - 1) {
        const __m512 out = accumulate
                               ? _mm512_fmadd_ps(acc[r][v], va, _mm512_maskz_loadu_ps(last, c))
                               : _mm512_mul_ps(acc[r][v], va);
        _mm512_mask_storeu_ps(c, last, out);
      } else {
        const __m512 out = accumulate ? _mm512_fmadd_ps(acc[r][v], va, _mm512_loadu_ps(c))
                                      : _mm512_mul_ps(acc[r][v], va);
        _mm512_storeu_ps(c, out);
      }
    }
}

template <int RB, int NV>
__attribute__((target("avx512f"), always_inline)) inline void block_dispatch(
    int64_t K, float alpha, const float* A, int64_t a_rs, int64_t a_ks, const float* B,
    int64_t ldb, float* C, int64_t ldc, bool accumulate, __mmask16 last) {
  if (last == 0xffff)
    block_avx512<RB, NV, false>(K, alpha, A, a_rs, a_ks, B, ldb, C, ldc, accumulate, last);
  else
    block_avx512<RB, NV, true>(K, alpha, A, a_rs, a_ks, B, ldb, C, ldc, accumulate, last);
}

template <int RB>
__attribute__((target("avx512f"))) void rows_avx512(int64_t N, int64_t K, float alpha,
                                                    const float* A, int64_t a_rs, int64_t a_ks,
                                                    const float* B, int64_t ldb, float* C,
                                                    int64_t ldc, bool accumulate) {
  for (int64_t n0 = 0; n0 < N; n0 += 64) {
    const int64_t nb = std::min<int64_t>(64, N - n0);
    const int nv = static_cast<int>((nb + 15) / 16);
    const int tail = static_cast<int>(nb - 16 * (nv - 1));
    const __mmask16 last = static_cast<__mmask16>(tail == 16 ? 0xffff : (1u << tail) - 1);
    const float* b = B + n0;
    float* c = C + n0;
    switch (nv) {
      case 1: block_dispatch<RB, 1>(K, alpha, A, a_rs, a_ks, b, ldb, c, ldc, accumulate, last); break;
      case 2: block_dispatch<RB, 2>(K, alpha, A, a_rs, a_ks, b, ldb, c, ldc, accumulate, last); break;
      case 3: block_dispatch<RB, 3>(K, alpha, A, a_rs, a_ks, b, ldb, c, ldc, accumulate, last); break;
      default: block_dispatch<RB, 4>(K, alpha, A, a_rs, a_ks, b, ldb, c, ldc, accumulate, last); break;
    }
  }
}

// AVX2 + FMA block: RB rows x NV 8-float vectors of C held in registers over the whole K loop
// (RB 6, NV 2: 12 accumulators + 2 B vectors + 1 broadcast of the 16 ymm registers). The last
// vector of a row is read and written through a lane mask (vmaskmovps) when N is not a multiple
// of 8 (kMasked); masked-off lanes are neither read nor written.
template <int RB, int NV, bool kMasked>
__attribute__((target("avx2,fma"), always_inline)) inline void block_avx2(
    int64_t K, float alpha, const float* A, int64_t a_rs, int64_t a_ks, const float* B,
    int64_t ldb, float* C, int64_t ldc, bool accumulate, __m256i last) {
  __m256 acc[RB][NV];
  for (int r = 0; r < RB; ++r)
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_setzero_ps();
  for (int64_t k = 0; k < K; ++k) {
    __m256 b[NV];
    for (int v = 0; v < NV; ++v)
      b[v] = (kMasked && v == NV - 1) ? _mm256_maskload_ps(B + k * ldb + 8 * v, last)
                                      : _mm256_loadu_ps(B + k * ldb + 8 * v);
    for (int r = 0; r < RB; ++r) {
      const __m256 a = _mm256_broadcast_ss(A + r * a_rs + k * a_ks);
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_fmadd_ps(a, b[v], acc[r][v]);
    }
  }
  const __m256 va = _mm256_set1_ps(alpha);
  for (int r = 0; r < RB; ++r)
    for (int v = 0; v < NV; ++v) {
      float* c = C + r * ldc + 8 * v;
      if (kMasked && v == NV - 1) {
        const __m256 out = accumulate
                               ? _mm256_fmadd_ps(acc[r][v], va, _mm256_maskload_ps(c, last))
                               : _mm256_mul_ps(acc[r][v], va);
        _mm256_maskstore_ps(c, last, out);
      } else {
        const __m256 out = accumulate ? _mm256_fmadd_ps(acc[r][v], va, _mm256_loadu_ps(c))
                                      : _mm256_mul_ps(acc[r][v], va);
        _mm256_storeu_ps(c, out);
      }
    }
}

template <int RB>
__attribute__((target("avx2,fma"))) void rows_avx2(int64_t N, int64_t K, float alpha,
                                                   const float* A, int64_t a_rs, int64_t a_ks,
                                                   const float* B, int64_t ldb, float* C,
                                                   int64_t ldc, bool accumulate) {
  for (int64_t n0 = 0; n0 < N; n0 += 16) {
    const int64_t nb = std::min<int64_t>(16, N - n0);
    const int nv = nb > 8 ? 2 : 1;
    const int tail = static_cast<int>(nb - 8 * (nv - 1));  // 1..8 lanes in the last vector
    const __m256i last = _mm256_cmpgt_epi32(_mm256_set1_epi32(tail),
                                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    const float* b = B + n0;
    float* c = C + n0;
    if (nv == 2) {
      if (tail == 8)
        block_avx2<RB, 2, false>(K, alpha, A, a_rs, a_ks, b, ldb, c, ldc, accumulate, last);
      else
        block_avx2<RB, 2, true>(K, alpha, A, a_rs, a_ks, b, ldb, c, ldc, accumulate, last);
    } else {
      if (tail == 8)
        block_avx2<RB, 1, false>(K, alpha, A, a_rs, a_ks, b, ldb, c, ldc, accumulate, last);
      else
        block_avx2<RB, 1, true>(K, alpha, A, a_rs, a_ks, b, ldb, c, ldc, accumulate, last);
    }
  }
}

template <typename T>
void rows_gemm_strided(int64_t R, int64_t N, int64_t K, T alpha, const T* A, int64_t a_rs,
                       int64_t a_ks, const T* B, int64_t ldb, T* C, int64_t ldc, bool accumulate) {
  if constexpr (std::is_same_v<T, float>) {
    if (has_avx512()) {
      int64_t r = 0;
      for (; r + 6 <= R; r += 6)
        rows_avx512<6>(N, K, alpha, A + r * a_rs, a_rs, a_ks, B, ldb, C + r * ldc, ldc, accumulate);
      if (r + 4 <= R) {
        rows_avx512<4>(N, K, alpha, A + r * a_rs, a_rs, a_ks, B, ldb, C + r * ldc, ldc, accumulate);
        r += 4;
      }
      for (; r < R; ++r)
        rows_avx512<1>(N, K, alpha, A + r * a_rs, a_rs, a_ks, B, ldb, C + r * ldc, ldc, accumulate);
      return;
    }
    if (has_avx2_fma()) {
      int64_t r = 0;
      for (; r + 6 <= R; r += 6)
        rows_avx2<6>(N, K, alpha, A + r * a_rs, a_rs, a_ks, B, ldb, C + r * ldc, ldc, accumulate);
      if (r + 4 <= R) {
        rows_avx2<4>(N, K, alpha, A + r * a_rs, a_rs, a_ks, B, ldb, C + r * ldc, ldc, accumulate);
        r += 4;
      }
      for (; r < R; ++r)
        rows_avx2<1>(N, K, alpha, A + r * a_rs, a_rs, a_ks, B, ldb, C + r * ldc, ldc, accumulate);
      return;
    }
  }
  rows_gemm_generic<T>(R, N, K, alpha, A, a_rs, a_ks, B, ldb, C, ldc, accumulate);
}

// C (+)= alpha A B with A row-major [R, K] (leading dimension lda).
template <typename T>
void rows_gemm(int64_t R, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
               int64_t ldb, T* C, int64_t ldc, bool accumulate) {
  rows_gemm_strided<T>(R, N, K, alpha, A, lda, 1, B, ldb, C, ldc, accumulate);
}

// C (+)= alpha A^T B with A row-major [K, R] (leading dimension lda).
template <typename T>
void rows_gemm_at(int64_t R, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
                  int64_t ldb, T* C, int64_t ldc, bool accumulate) {
  rows_gemm_strided<T>(R, N, K, alpha, A, 1, lda, B, ldb, C, ldc, accumulate);
}

// Transposes the keys (or values) of one head, [Tk, Dh], into key-tile-major blocks
// [ntiles][Dh][kTileK] (the last tile zero-padded). A plain [Dh, Tk] transpose would put the rows
// a product walks through Tk floats apart, and with Tk a multiple of 1024 they all fall into the
// same L1 set; tile blocks keep each product's operand contiguous (Dh x kTileK).
// AVX-512: 16 x 16 blocks transposed in registers (unpack, then two rounds of lane shuffles);
// rows past the end of the keys read as zeros.
__attribute__((target("avx512f"))) void transpose_tiles_avx512(const float* src, int64_t Tk,
                                                               int64_t Dh, float* dst) {
  static_assert(kTileK % 16 == 0, "key tiles are whole 16-key blocks");
  const int64_t ntiles = (Tk + kTileK - 1) / kTileK;
  for (int64_t t = 0; t < ntiles; ++t) {
    float* block = dst + t * Dh * kTileK;
    for (int64_t j0 = t * kTileK; j0 < (t + 1) * kTileK; j0 += 16)
      for (int64_t c0 = 0; c0 < Dh; c0 += 16) {
        __m512 r[16], u[16];
        for (int i = 0; i < 16; ++i)
          r[i] = j0 + i < Tk ? _mm512_loadu_ps(src + (j0 + i) * Dh + c0) : _mm512_setzero_ps();
        for (int i = 0; i < 16; i += 2) {  // per 128-bit lane: (a0 b0 a1 b1), (a2 b2 a3 b3)
          u[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
          u[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
        }
        for (int i = 0; i < 16; i += 4) {  // r[i + k], lane L: column 4L + k of rows i..i+3
          r[i] = _mm512_shuffle_ps(u[i], u[i + 2], 0x44);
          r[i + 1] = _mm512_shuffle_ps(u[i], u[i + 2], 0xEE);
          r[i + 2] = _mm512_shuffle_ps(u[i + 1], u[i + 3], 0x44);
          r[i + 3] = _mm512_shuffle_ps(u[i + 1], u[i + 3], 0xEE);
        }
        for (int k = 0; k < 4; ++k) {
          // Lanes (L0, L2) and (L1, L3) of row groups 0/1 and 2/3, then interleaved again.
          const __m512 a0 = _mm512_shuffle_f32x4(r[k], r[4 + k], 0x88);
          const __m512 a1 = _mm512_shuffle_f32x4(r[k], r[4 + k], 0xDD);
          const __m512 a2 = _mm512_shuffle_f32x4(r[8 + k], r[12 + k], 0x88);
          const __m512 a3 = _mm512_shuffle_f32x4(r[8 + k], r[12 + k], 0xDD);
          float* out = block + (c0 + k) * kTileK + (j0 - t * kTileK);
          _mm512_storeu_ps(out, _mm512_shuffle_f32x4(a0, a2, 0x88));                // column k
          _mm512_storeu_ps(out + 4 * kTileK, _mm512_shuffle_f32x4(a1, a3, 0x88));   // 4 + k
          _mm512_storeu_ps(out + 8 * kTileK, _mm512_shuffle_f32x4(a0, a2, 0xDD));   // 8 + k
          _mm512_storeu_ps(out + 12 * kTileK, _mm512_shuffle_f32x4(a1, a3, 0xDD));  // 12 + k
        }
      }
  }
}

// AVX2: 8 x 8 blocks transposed in registers (unpack, shuffle, then 128-bit lane permutes);
// rows past the end of the keys read as zeros.
__attribute__((target("avx2"))) void transpose_tiles_avx2(const float* src, int64_t Tk,
                                                          int64_t Dh, float* dst) {
  static_assert(kTileK % 8 == 0, "key tiles are whole 8-key blocks");
  const int64_t ntiles = (Tk + kTileK - 1) / kTileK;
  for (int64_t t = 0; t < ntiles; ++t) {
    float* block = dst + t * Dh * kTileK;
    for (int64_t j0 = t * kTileK; j0 < (t + 1) * kTileK; j0 += 8)
      for (int64_t c0 = 0; c0 < Dh; c0 += 8) {
        __m256 r[8];
        for (int i = 0; i < 8; ++i)
          r[i] = j0 + i < Tk ? _mm256_loadu_ps(src + (j0 + i) * Dh + c0) : _mm256_setzero_ps();
        const __m256 u0 = _mm256_unpacklo_ps(r[0], r[1]), u1 = _mm256_unpackhi_ps(r[0], r[1]);
        const __m256 u2 = _mm256_unpacklo_ps(r[2], r[3]), u3 = _mm256_unpackhi_ps(r[2], r[3]);
        const __m256 u4 = _mm256_unpacklo_ps(r[4], r[5]), u5 = _mm256_unpackhi_ps(r[4], r[5]);
        const __m256 u6 = _mm256_unpacklo_ps(r[6], r[7]), u7 = _mm256_unpackhi_ps(r[6], r[7]);
        // Per 128-bit lane L, s_k holds column 4L + k of rows 0..3 (s0..s3) or 4..7 (s4..s7).
        const __m256 s0 = _mm256_shuffle_ps(u0, u2, 0x44), s1 = _mm256_shuffle_ps(u0, u2, 0xEE);
        const __m256 s2 = _mm256_shuffle_ps(u1, u3, 0x44), s3 = _mm256_shuffle_ps(u1, u3, 0xEE);
        const __m256 s4 = _mm256_shuffle_ps(u4, u6, 0x44), s5 = _mm256_shuffle_ps(u4, u6, 0xEE);
        const __m256 s6 = _mm256_shuffle_ps(u5, u7, 0x44), s7 = _mm256_shuffle_ps(u5, u7, 0xEE);
        const __m256 lo[4] = {s0, s1, s2, s3}, hi[4] = {s4, s5, s6, s7};
        float* out = block + c0 * kTileK + (j0 - t * kTileK);
        for (int k = 0; k < 4; ++k) {
          _mm256_storeu_ps(out + k * kTileK, _mm256_permute2f128_ps(lo[k], hi[k], 0x20));
          _mm256_storeu_ps(out + (4 + k) * kTileK, _mm256_permute2f128_ps(lo[k], hi[k], 0x31));
        }
      }
  }
}

template <typename T>
void transpose_tiles(const T* src, int64_t Tk, int64_t Dh, T* dst) {
  if constexpr (std::is_same_v<T, float>) {
    if (has_avx512() && Dh % 16 == 0) return transpose_tiles_avx512(src, Tk, Dh, dst);
    if (has_avx2_fma() && Dh % 8 == 0) return transpose_tiles_avx2(src, Tk, Dh, dst);
  }
  const int64_t ntiles = (Tk + kTileK - 1) / kTileK;
  for (int64_t t = 0; t < ntiles; ++t) {
    T* block = dst + t * Dh * kTileK;
    const int64_t j0 = t * kTileK, nk = std::min(kTileK, Tk - j0);
    for (int64_t c = 0; c < Dh; ++c)
      for (int64_t j = 0; j < kTileK; ++j) block[c * kTileK + j] = j < nk ? src[(j0 + j) * Dh + c] : T(0);
  }
}

// ---------------------------------------------------------------- row operations
// float: multiversioned loops with the vectorisable fast_exp; double: plain loops with std::exp.

// AVX-512 row operations (the inner loops of the online softmax): e^x by Cody-Waite reduction,
// a degree-6 polynomial and vscalefps; x < -87.3 (and -inf, i.e. masked) gives exactly 0.
__attribute__((target("avx512f"), always_inline)) inline __m512 exp512(__m512 x) {
  const __mmask16 underflow = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.3f), _CMP_LT_OQ);
  x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.0f)), _mm512_set1_ps(88.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187e-06f), r);
  __m512 p = _mm512_set1_ps(1.0f / 720.0f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_maskz_mov_ps(static_cast<__mmask16>(~underflow), _mm512_scalef_ps(p, n));
}

__attribute__((target("avx512f"), always_inline)) inline float hsum512(__m512 v) {
  return _mm512_reduce_add_ps(v);  // a shuffle tree in registers
}

__attribute__((target("avx512f"), always_inline)) inline __mmask16 tail_mask(int64_t left) {
  return left >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << left) - 1);
}

__attribute__((target("avx512f"))) float max_avx512(const float* x, int64_t n) {
  __m512 m = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  for (int64_t j = 0; j < n; j += 16) {
    const __mmask16 k = tail_mask(n - j);
    m = _mm512_mask_max_ps(m, k, m, _mm512_maskz_loadu_ps(k, x + j));
  }
  return _mm512_reduce_max_ps(m);
}

__attribute__((target("avx512f"))) float exp_sub_sum_avx512(float* x, int64_t n, float mx) {
  const __m512 vm = _mm512_set1_ps(mx);
  __m512 sum = _mm512_setzero_ps();
  for (int64_t j = 0; j < n; j += 16) {
    const __mmask16 k = tail_mask(n - j);
    const __m512 e = exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + j), vm));
    _mm512_mask_storeu_ps(x + j, k, e);
    sum = _mm512_add_ps(sum, _mm512_maskz_mov_ps(k, e));
  }
  return hsum512(sum);
}

ATTEND_MULTIVERSION float max_f(const float* x, int64_t n) { return row_max(x, n); }
ATTEND_MULTIVERSION float exp_sub_sum_f(float* x, int64_t n, float mx) {
  float sum = 0.f;
  for (int64_t j = 0; j < n; ++j) {
    x[j] = fast_exp(x[j] - mx);
    sum += x[j];
  }
  return sum;
}
ATTEND_MULTIVERSION void scale_f(float* x, int64_t n, float a) {
  for (int64_t j = 0; j < n; ++j) x[j] *= a;
}
ATTEND_MULTIVERSION void ds_f(const float* p, float* dp, int64_t n, float delta) {
  for (int64_t j = 0; j < n; ++j) dp[j] = p[j] * (dp[j] - delta);
}
ATTEND_MULTIVERSION void axpy_f(float* y, const float* x, int64_t n, float a) {
  for (int64_t j = 0; j < n; ++j) y[j] += a * x[j];
}
ATTEND_MULTIVERSION float dot_f(const float* a, const float* b, int64_t n) {
  float acc = 0.f;
  for (int64_t j = 0; j < n; ++j) acc += a[j] * b[j];
  return acc;
}

template <typename T>
T max_row(const T* x, int64_t n) {
  if constexpr (std::is_same_v<T, float>) {
    return has_avx512() ? max_avx512(x, n) : max_f(x, n);
  } else {
    T mx = -std::numeric_limits<T>::infinity();
    for (int64_t j = 0; j < n; ++j) mx = x[j] > mx ? x[j] : mx;
    return mx;
  }
}
// x = exp(x - mx), returns the sum.
template <typename T>
T exp_sub_sum(T* x, int64_t n, T mx) {
  if constexpr (std::is_same_v<T, float>) {
    return has_avx512() ? exp_sub_sum_avx512(x, n, mx) : exp_sub_sum_f(x, n, mx);
  } else {
    T sum = 0;
    for (int64_t j = 0; j < n; ++j) sum += (x[j] = std::exp(x[j] - mx));
    return sum;
  }
}
template <typename T>
void scale_row(T* x, int64_t n, T a) {
  if constexpr (std::is_same_v<T, float>) scale_f(x, n, a);
  else for (int64_t j = 0; j < n; ++j) x[j] *= a;
}
// dp = p * (dp - delta)
template <typename T>
void ds_row(const T* p, T* dp, int64_t n, T delta) {
  if constexpr (std::is_same_v<T, float>) ds_f(p, dp, n, delta);
  else for (int64_t j = 0; j < n; ++j) dp[j] = p[j] * (dp[j] - delta);
}
// y += a * x
template <typename T>
void axpy_row(T* y, const T* x, int64_t n, T a) {
  if constexpr (std::is_same_v<T, float>) axpy_f(y, x, n, a);
  else for (int64_t j = 0; j < n; ++j) y[j] += a * x[j];
}
template <typename T>
T dot(const T* a, const T* b, int64_t n) {
  if constexpr (std::is_same_v<T, float>) {
    return dot_f(a, b, n);
  } else {
    T acc = 0;
    for (int64_t j = 0; j < n; ++j) acc += a[j] * b[j];
    return acc;
  }
}

// Whether every score of the tile is visible (then no per-element mask is needed).
bool tile_fully_visible(const Mask& m, int64_t b, int64_t i0, int64_t i1, int64_t j0, int64_t j1,
                        int64_t Tk) {
  if (j1 > m.limit(b, i0, Tk)) return false;  // limit grows with i under causality
  if (m.window < 0) return true;
  const int64_t p0 = i0 + m.query_offset, p1 = i1 - 1 + m.query_offset;
  if (p1 < m.global_tokens || j1 - 1 < m.global_tokens) return true;
  return j0 >= p1 - m.window && j1 - 1 <= p0 + m.window;
}

}  // namespace

std::string attention_kernel_description() {
  const std::string chosen = kernel_isa() == cpu_isa() ? "" : " (chosen by ATTEND_ISA)";
  if (has_avx512())
    return "avx512f micro-kernels (tile products 6 x 64, decoding rows for head width 16k)";
  if (has_avx2_fma())
    return "avx2+fma micro-kernels (tile products 6 x 16, decoding rows for head width 8k)" +
           chosen + (cpu_isa() == Isa::kAvx512 ? "" : "; avx512f: no");
  return "portable loops" + chosen + (cpu_isa() == Isa::kPortable ? " (no avx2+fma)" : "");
}

bool tile_may_be_visible(const Mask& m, int64_t b, int64_t i0, int64_t i1, int64_t j0, int64_t j1,
                         int64_t Tk) {
  if (j0 >= m.limit(b, i1 - 1, Tk)) return false;  // the last row has the largest limit
  if (m.window < 0) return true;
  const int64_t p0 = i0 + m.query_offset, p1 = i1 - 1 + m.query_offset;
  if (p0 < m.global_tokens || j0 < m.global_tokens) return true;
  return j0 <= p1 + m.window && j1 - 1 >= p0 - m.window;
}

// One query row per (batch, head), as in incremental decoding: the scores come straight from
// the rows of K (no tile-major copy of the cache, which would cost more than the product), then
// the softmax and the weighted sum of the rows of V. Same results as the tiled path: output 0
// and lse -inf for a row that sees no key.
// With AVX-512 and Dh = 16 NV (NV <= 8) the query and the output row stay in registers: one
// call per row instead of a dot-product and an axpy call per key (the per-key calls cost more
// than their 64 multiply-adds at decoding's short key lengths).
template <int NV>
__attribute__((target("avx512f"))) void one_query_row_avx512(const float* qr, const float* kb,
                                                             const float* vb, float* orow,
                                                             float* lse, float* sc, int64_t lim,
                                                             const Mask& m, int64_t b, int64_t Tk,
                                                             float scale, const float* brow) {
  __m512 qv[NV];
  for (int c = 0; c < NV; ++c) qv[c] = _mm512_loadu_ps(qr + 16 * c);
  // Keys below lim are all visible unless a local window cuts holes: check per key only then
  // (recomputing the limit for every key costs as much as the dot product at Dh = 64).
  const bool every_key = m.prefix_only();
  for (int64_t j = 0; j < lim; ++j) {
    if (!every_key && !m.allowed(b, 0, j, Tk)) {
      sc[j] = -std::numeric_limits<float>::infinity();
      continue;
    }
    const float* kr = kb + j * 16 * NV;
    __m512 acc = _mm512_mul_ps(qv[0], _mm512_loadu_ps(kr));
    for (int c = 1; c < NV; ++c) acc = _mm512_fmadd_ps(qv[c], _mm512_loadu_ps(kr + 16 * c), acc);
    sc[j] = hsum512(acc) * scale + (brow ? brow[j] : 0.f);
  }
  const float mx = lim > 0 ? max_avx512(sc, lim) : -std::numeric_limits<float>::infinity();
  if (mx == -std::numeric_limits<float>::infinity()) {
    for (int c = 0; c < NV; ++c) _mm512_storeu_ps(orow + 16 * c, _mm512_setzero_ps());
    *lse = -std::numeric_limits<float>::infinity();
    return;
  }
  const float l = exp_sub_sum_avx512(sc, lim, mx);  // masked keys: exp(-inf) = 0
  __m512 ov[NV];
  for (int c = 0; c < NV; ++c) ov[c] = _mm512_setzero_ps();
  for (int64_t j = 0; j < lim; ++j) {
    if (sc[j] == 0.f) continue;
    const __m512 p = _mm512_set1_ps(sc[j]);
    const float* vr = vb + j * 16 * NV;
    for (int c = 0; c < NV; ++c) ov[c] = _mm512_fmadd_ps(p, _mm512_loadu_ps(vr + 16 * c), ov[c]);
  }
  const __m512 inv = _mm512_set1_ps(1.f / l);
  for (int c = 0; c < NV; ++c) _mm512_storeu_ps(orow + 16 * c, _mm512_mul_ps(ov[c], inv));
  *lse = mx + std::log(l);
}

// The same with AVX2 + FMA and Dh = 8 NV (NV <= 8): the query row in registers for the scores,
// the output row for the weighted sum (the two loops do not hold both at once).
__attribute__((target("avx2,fma"), always_inline)) inline float hsum256(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t)));
}

template <int NV>
__attribute__((target("avx2,fma"))) void one_query_row_avx2(const float* qr, const float* kb,
                                                            const float* vb, float* orow,
                                                            float* lse, float* sc, int64_t lim,
                                                            const Mask& m, int64_t b, int64_t Tk,
                                                            float scale, const float* brow) {
  __m256 qv[NV];
  for (int c = 0; c < NV; ++c) qv[c] = _mm256_loadu_ps(qr + 8 * c);
  const bool every_key = m.prefix_only();
  for (int64_t j = 0; j < lim; ++j) {
    if (!every_key && !m.allowed(b, 0, j, Tk)) {
      sc[j] = -std::numeric_limits<float>::infinity();
      continue;
    }
    const float* kr = kb + j * 8 * NV;
    __m256 acc = _mm256_mul_ps(qv[0], _mm256_loadu_ps(kr));
    for (int c = 1; c < NV; ++c) acc = _mm256_fmadd_ps(qv[c], _mm256_loadu_ps(kr + 8 * c), acc);
    sc[j] = hsum256(acc) * scale + (brow ? brow[j] : 0.f);
  }
  const float mx = lim > 0 ? max_f(sc, lim) : -std::numeric_limits<float>::infinity();
  if (mx == -std::numeric_limits<float>::infinity()) {
    for (int c = 0; c < NV; ++c) _mm256_storeu_ps(orow + 8 * c, _mm256_setzero_ps());
    *lse = -std::numeric_limits<float>::infinity();
    return;
  }
  const float l = exp_sub_sum_f(sc, lim, mx);  // masked keys: exp(-inf) = 0
  __m256 ov[NV];
  for (int c = 0; c < NV; ++c) ov[c] = _mm256_setzero_ps();
  for (int64_t j = 0; j < lim; ++j) {
    if (sc[j] == 0.f) continue;
    const __m256 p = _mm256_set1_ps(sc[j]);
    const float* vr = vb + j * 8 * NV;
    for (int c = 0; c < NV; ++c) ov[c] = _mm256_fmadd_ps(p, _mm256_loadu_ps(vr + 8 * c), ov[c]);
  }
  const __m256 inv = _mm256_set1_ps(1.f / l);
  for (int c = 0; c < NV; ++c) _mm256_storeu_ps(orow + 8 * c, _mm256_mul_ps(ov[c], inv));
  *lse = mx + std::log(l);
}

using OneQueryRow = void (*)(const float*, const float*, const float*, float*, float*, float*,
                             int64_t, const Mask&, int64_t, int64_t, float, const float*);

OneQueryRow one_query_row_kernel(int64_t Dh) {
  if (!has_avx512()) {
    if (!has_avx2_fma() || Dh % 8 != 0) return nullptr;
    switch (Dh / 8) {
      case 1: return one_query_row_avx2<1>;
      case 2: return one_query_row_avx2<2>;
      case 3: return one_query_row_avx2<3>;
      case 4: return one_query_row_avx2<4>;
      case 5: return one_query_row_avx2<5>;
      case 6: return one_query_row_avx2<6>;
      case 7: return one_query_row_avx2<7>;
      case 8: return one_query_row_avx2<8>;
      default: return nullptr;
    }
  }
  if (Dh % 16 != 0) return nullptr;
  switch (Dh / 16) {
    case 1: return one_query_row_avx512<1>;
    case 2: return one_query_row_avx512<2>;
    case 3: return one_query_row_avx512<3>;
    case 4: return one_query_row_avx512<4>;
    case 5: return one_query_row_avx512<5>;
    case 6: return one_query_row_avx512<6>;
    case 7: return one_query_row_avx512<7>;
    case 8: return one_query_row_avx512<8>;
    default: return nullptr;
  }
}

template <typename T>
void attention_one_query(const T* q, const T* k, const T* v, T* o, T* lse, const AttnDims& d,
                         const Mask& m, T scale, const ScoreBias<T>& bias) {
  const int64_t BH = d.B * d.H, Dh = d.Dh, Tk = d.Tk;
  OneQueryRow fast = nullptr;
  if constexpr (std::is_same_v<T, float>) fast = one_query_row_kernel(Dh);
  parallel_for(BH, 8, [&](int64_t s, int64_t e) {
    std::vector<T> sc(static_cast<size_t>(Tk));
    for (int64_t bh = s; bh < e; ++bh) {
      const int64_t b = bh / d.H, kvh = d.kv_head(bh);
      const T* qr = q + bh * Dh;
      const T* kb = k + kvh * Tk * Dh;
      const T* vb = v + kvh * Tk * Dh;
      T* orow = o + bh * Dh;
      const int64_t lim = std::min(m.limit(b, 0, Tk), Tk);
      const T* brow = bias.data ? bias.row(b, bh % d.H, m.query_offset) : nullptr;
      if constexpr (std::is_same_v<T, float>) {
        if (fast) {
          fast(qr, kb, vb, orow, lse + bh, sc.data(), lim, m, b, Tk, scale, brow);
          continue;
        }
      }
      for (int64_t j = 0; j < lim; ++j)
        sc[j] = m.prefix_only() || m.allowed(b, 0, j, Tk)
                    ? dot(qr, kb + j * Dh, Dh) * scale + (brow ? brow[j] : T(0))
                    : -std::numeric_limits<T>::infinity();
      std::fill(orow, orow + Dh, T(0));
      const T mx = lim > 0 ? max_row(sc.data(), lim) : -std::numeric_limits<T>::infinity();
      if (mx == -std::numeric_limits<T>::infinity()) {
        lse[bh] = -std::numeric_limits<T>::infinity();
        continue;
      }
      const T l = exp_sub_sum(sc.data(), lim, mx);  // masked keys: exp(-inf) = 0
      for (int64_t j = 0; j < lim; ++j)
        if (sc[j] != T(0)) axpy_row(orow, vb + j * Dh, Dh, sc[j]);
      scale_row(orow, Dh, T(1) / l);
      lse[bh] = mx + std::log(l);
    }
  });
}

template <typename T>
void flash_attention(const T* q, const T* k, const T* v, T* o, T* lse, const AttnDims& d,
                     const Mask& m, double scale_d, const ScoreBias<T>& bias) {
  const int64_t BH = d.B * d.H, Dh = d.Dh, Tq = d.Tq, Tk = d.Tk;
  if (BH == 0 || Tq == 0) return;
  const T scale = static_cast<T>(scale_d);
  if (Tq == 1) return attention_one_query(q, k, v, o, lse, d, m, scale, bias);
  // K transposed per head and key tile: kt [BH][ntiles][Dh][kTileK], so S = Q_tile kt_tile is
  // a rows_gemm over a contiguous operand.
  const int64_t ntiles = (Tk + kTileK - 1) / kTileK, head_kt = ntiles * Dh * kTileK;
  const int64_t kvBH = d.kv_batch() * d.H;
  const std::unique_ptr<T[]> kt(new T[static_cast<size_t>(kvBH * head_kt)]);  // all written
  parallel_for(kvBH, 1, [&](int64_t s, int64_t e) {
    for (int64_t bh = s; bh < e; ++bh) transpose_tiles(k + bh * Tk * Dh, Tk, Dh, kt.get() + bh * head_kt);
  });
  // Work items are (head, group of up to kMaxGroupQ query tiles): each K and V tile is loaded
  // once for the whole group and used while it is in L1 (at n = 4,096 the K and V of one head,
  // 2 MiB, no longer fit the L2 of a core). Groups shrink when there would be too few items.
  const int64_t nqt = (Tq + kTileQ - 1) / kTileQ;
  const int64_t G = std::clamp<int64_t>(BH * nqt / (4 * num_threads()), 1, kMaxGroupQ);
  const int64_t ngroups = (nqt + G - 1) / G;
  parallel_for(BH * ngroups, 1, [&](int64_t s, int64_t e) {
    std::vector<T> S(kTileQ * kTileK), acc(G * kTileQ * Dh), mrow(G * kTileQ), lrow(G * kTileQ);
    for (int64_t item = s; item < e; ++item) {
      const int64_t bh = item / ngroups, t = item % ngroups;
      // Zig-zag over query groups so that contiguous ranges mix cheap and costly (causal) ones.
      const int64_t g0 = (t % 2 == 0) ? t / 2 : ngroups - 1 - t / 2;
      const int64_t qt0 = g0 * G, qt1 = std::min(nqt, qt0 + G);
      const int64_t b = bh / d.H, kvh = d.kv_head(bh);
      std::fill(acc.begin(), acc.end(), T(0));
      std::fill(mrow.begin(), mrow.end(), -std::numeric_limits<T>::infinity());
      std::fill(lrow.begin(), lrow.end(), T(0));
      for (int64_t j0 = 0; j0 < Tk; j0 += kTileK) {
        const int64_t j1 = std::min(Tk, j0 + kTileK), nk = j1 - j0;
        const T* ktile = kt.get() + kvh * head_kt + (j0 / kTileK) * Dh * kTileK;
        const T* vtile = v + (kvh * Tk + j0) * Dh;
        for (int64_t qt = qt0; qt < qt1; ++qt) {
          const int64_t i0 = qt * kTileQ, i1 = std::min(Tq, i0 + kTileQ), nq = i1 - i0;
          if (!tile_may_be_visible(m, b, i0, i1, j0, j1, Tk)) continue;
          T* accg = acc.data() + (qt - qt0) * kTileQ * Dh;
          T* mg = mrow.data() + (qt - qt0) * kTileQ;
          T* lg = lrow.data() + (qt - qt0) * kTileQ;
          rows_gemm<T>(nq, nk, Dh, scale, q + (bh * Tq + i0) * Dh, Dh, ktile, kTileK, S.data(),
                       kTileK, false);
          const bool full = tile_fully_visible(m, b, i0, i1, j0, j1, Tk);
          for (int64_t r = 0; r < nq; ++r) {
            T* srow = S.data() + r * kTileK;
            if (bias.data)
              axpy_row(srow, bias.row(b, bh % d.H, i0 + r + m.query_offset) + j0, nk, T(1));
            if (!full)
              for (int64_t c = 0; c < nk; ++c)
                if (!m.allowed(b, i0 + r, j0 + c, Tk)) srow[c] = -std::numeric_limits<T>::infinity();
            const T tile_max = max_row(srow, nk);
            const T mx = tile_max > mg[r] ? tile_max : mg[r];
            if (mx == -std::numeric_limits<T>::infinity()) {  // nothing visible yet in this row
              std::fill(srow, srow + nk, T(0));
              continue;
            }
            const T sum = exp_sub_sum(srow, nk, mx);
            if (mx != mg[r]) {  // the running max moved: rescale what was accumulated so far
              const T alpha = std::exp(mg[r] - mx);
              lg[r] *= alpha;
              scale_row(accg + r * Dh, Dh, alpha);
              mg[r] = mx;
            }
            lg[r] += sum;
          }
          rows_gemm<T>(nq, Dh, nk, T(1), S.data(), kTileK, vtile, Dh, accg, Dh, true);
        }
      }
      for (int64_t qt = qt0; qt < qt1; ++qt) {
        const int64_t i0 = qt * kTileQ, nq = std::min(Tq, i0 + kTileQ) - i0;
        for (int64_t r = 0; r < nq; ++r) {
          const int64_t row = (qt - qt0) * kTileQ + r;
          T* orow = o + (bh * Tq + i0 + r) * Dh;
          const T l = lrow[row];
          const T inv = l > T(0) ? T(1) / l : T(0);
          for (int64_t c = 0; c < Dh; ++c) orow[c] = acc[row * Dh + c] * inv;
          lse[bh * Tq + i0 + r] =
              l > T(0) ? mrow[row] + std::log(l) : -std::numeric_limits<T>::infinity();
        }
      }
    }
  });
}

template <typename T>
void flash_attention_backward(const T* q, const T* k, const T* v, const T* o, const T* lse,
                              const T* dout, T* dq, T* dk, T* dv, const AttnDims& d, const Mask& m,
                              double scale_d, const ScoreBias<T>& bias, T* dbias) {
  const int64_t BH = d.B * d.H, Dh = d.Dh, Tq = d.Tq, Tk = d.Tk;
  if (BH == 0) return;
  const T scale = static_cast<T>(scale_d);
  std::fill(dq, dq + BH * Tq * Dh, T(0));
  if (dbias) std::fill(dbias, dbias + BH * bias.span, T(0));
  if (Tq == 0) {
    std::fill(dk, dk + BH * Tk * Dh, T(0));
    std::fill(dv, dv + BH * Tk * Dh, T(0));
    return;
  }
  // delta[i] = <dO_i, O_i> (the softmax-backward row term); V transposed per head.
  const int64_t ntiles = (Tk + kTileK - 1) / kTileK, head_kt = ntiles * Dh * kTileK;
  // Every element is written before it is read (the transposes pad the last tile): not zeroed.
  const std::unique_ptr<T[]> delta(new T[static_cast<size_t>(BH * Tq)]),
      vt(new T[static_cast<size_t>(BH * head_kt)]), kt(new T[static_cast<size_t>(BH * head_kt)]);
  parallel_for(BH, 1, [&](int64_t s, int64_t e) {
    for (int64_t bh = s; bh < e; ++bh) {
      for (int64_t i = 0; i < Tq; ++i)
        delta[bh * Tq + i] = dot(dout + (bh * Tq + i) * Dh, o + (bh * Tq + i) * Dh, Dh);
      transpose_tiles(v + bh * Tk * Dh, Tk, Dh, vt.get() + bh * head_kt);
      transpose_tiles(k + bh * Tk * Dh, Tk, Dh, kt.get() + bh * head_kt);
    }
  });
  // Work items: (head, chunk of key tiles). With fewer heads than threads the key tiles of a
  // head are split across items, each with a private dQ buffer summed at the end.
  const int64_t nkt = (Tk + kTileK - 1) / kTileK;
  const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(nkt, (num_threads() + BH - 1) / BH));
  std::vector<T> dq_private(chunks > 1 ? static_cast<size_t>(BH * chunks * Tq * Dh) : 0, T(0));
  // The bias gradient of (head, chunk) items: chunks of one head add into the same offsets.
  std::vector<T> dbias_private(
      dbias && chunks > 1 ? static_cast<size_t>(BH * chunks * bias.span) : 0, T(0));
  parallel_for(BH * chunks, 1, [&](int64_t s, int64_t e) {
    // Up to kMaxGroupK key tiles share each pass over the query tiles, so the Q, dO and dQ
    // rows of a query tile are read once per group (they are streamed from beyond the L2 at
    // n = 4,096); each key tile's dK, dV rows belong to this item and accumulate in place.
    std::vector<T> S(kTileQ * kTileK), dS(kTileQ * kTileK);
    for (int64_t item = s; item < e; ++item) {
      const int64_t bh = item / chunks, chunk = item % chunks, b = bh / d.H;
      T* dq_out = chunks > 1 ? dq_private.data() + item * Tq * Dh : dq + bh * Tq * Dh;
      T* db_out = !dbias       ? nullptr
                  : chunks > 1 ? dbias_private.data() + item * bias.span
                               : dbias + bh * bias.span;
      const int64_t kt0 = nkt * chunk / chunks, kt1 = nkt * (chunk + 1) / chunks;
      for (int64_t kg0 = kt0; kg0 < kt1; kg0 += kMaxGroupK) {
        const int64_t kg1 = std::min(kt1, kg0 + kMaxGroupK);
        const int64_t rows0 = kg0 * kTileK, rows1 = std::min(Tk, kg1 * kTileK);
        std::fill(dk + (bh * Tk + rows0) * Dh, dk + (bh * Tk + rows1) * Dh, T(0));
        std::fill(dv + (bh * Tk + rows0) * Dh, dv + (bh * Tk + rows1) * Dh, T(0));
        for (int64_t i0 = 0; i0 < Tq; i0 += kTileQ) {
          const int64_t i1 = std::min(Tq, i0 + kTileQ), nq = i1 - i0;
          const T* qb = q + (bh * Tq + i0) * Dh;
          const T* dob = dout + (bh * Tq + i0) * Dh;
          for (int64_t ktile = kg0; ktile < kg1; ++ktile) {
            const int64_t j0 = ktile * kTileK, j1 = std::min(Tk, j0 + kTileK), nk = j1 - j0;
            if (!tile_may_be_visible(m, b, i0, i1, j0, j1, Tk)) continue;
            T* dk_g = dk + (bh * Tk + j0) * Dh;
            T* dv_g = dv + (bh * Tk + j0) * Dh;
            // P = exp(scale q k^T - lse), masked entries 0.
            rows_gemm<T>(nq, nk, Dh, scale, qb, Dh, kt.get() + bh * head_kt + ktile * Dh * kTileK,
                         kTileK, S.data(), kTileK, false);
            const bool full = tile_fully_visible(m, b, i0, i1, j0, j1, Tk);
            for (int64_t r = 0; r < nq; ++r) {
              const T l = lse[bh * Tq + i0 + r];
              T* srow = S.data() + r * kTileK;
              if (l == -std::numeric_limits<T>::infinity()) {
                std::fill(srow, srow + nk, T(0));
                continue;
              }
              if (bias.data)
                axpy_row(srow, bias.row(b, bh % d.H, i0 + r + m.query_offset) + j0, nk, T(1));
              if (!full)
                for (int64_t c = 0; c < nk; ++c)
                  if (!m.allowed(b, i0 + r, j0 + c, Tk)) srow[c] = -std::numeric_limits<T>::infinity();
              exp_sub_sum(srow, nk, l);
            }
            // dV += P^T dO
            rows_gemm_at<T>(nk, Dh, nq, T(1), S.data(), kTileK, dob, Dh, dv_g, Dh, true);
            // dP = dO V^T;  dS = P * (dP - delta)
            rows_gemm<T>(nq, nk, Dh, T(1), dob, Dh, vt.get() + bh * head_kt + ktile * Dh * kTileK,
                         kTileK, dS.data(), kTileK, false);
            for (int64_t r = 0; r < nq; ++r) {
              ds_row(S.data() + r * kTileK, dS.data() + r * kTileK, nk, delta[bh * Tq + i0 + r]);
              if (db_out)  // the bias enters the scores unscaled: its gradient is dS
                axpy_row(bias.grad_row(db_out, 0, i0 + r + m.query_offset) + j0,
                         dS.data() + r * kTileK, nk, T(1));
            }
            // dQ += scale dS K;  dK += scale dS^T Q
            rows_gemm<T>(nq, Dh, nk, scale, dS.data(), kTileK, k + (bh * Tk + j0) * Dh, Dh,
                         dq_out + i0 * Dh, Dh, true);
            rows_gemm_at<T>(nk, Dh, nq, scale, dS.data(), kTileK, qb, Dh, dk_g, Dh, true);
          }
        }
      }
    }
  });
  if (chunks > 1)
    parallel_for(BH, 1, [&](int64_t s, int64_t e) {
      for (int64_t bh = s; bh < e; ++bh)
        for (int64_t c = 0; c < chunks; ++c) {
          const T* src = dq_private.data() + (bh * chunks + c) * Tq * Dh;
          T* dst = dq + bh * Tq * Dh;
          for (int64_t x = 0; x < Tq * Dh; ++x) dst[x] += src[x];
          if (dbias)
            axpy_row(dbias + bh * bias.span, dbias_private.data() + (bh * chunks + c) * bias.span,
                     bias.span, T(1));
        }
    });
}

template void flash_attention<float>(const float*, const float*, const float*, float*, float*,
                                     const AttnDims&, const Mask&, double, const ScoreBias<float>&);
template void flash_attention<double>(const double*, const double*, const double*, double*, double*,
                                      const AttnDims&, const Mask&, double,
                                      const ScoreBias<double>&);
template void flash_attention_backward<float>(const float*, const float*, const float*,
                                              const float*, const float*, const float*, float*,
                                              float*, float*, const AttnDims&, const Mask&, double,
                                              const ScoreBias<float>&, float*);
template void flash_attention_backward<double>(const double*, const double*, const double*,
                                               const double*, const double*, const double*, double*,
                                               double*, double*, const AttnDims&, const Mask&,
                                               double, const ScoreBias<double>&, double*);

}  // namespace attend::cpu
