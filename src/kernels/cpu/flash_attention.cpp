// Fused attention: for each (batch, head, query tile) the key tiles are visited with an online
// softmax (running max m, running sum l, rescaled accumulator); only the per-row log-sum-exp is
// saved. Backward (per key tile, FlashAttention-2 order) recomputes P = exp(S - lse) and
// accumulates dK, dV in the tile, dQ in a per-head (or per-work-item) buffer.
//
// All products are C (+)= alpha * A B with A row-major [R, K] and B row-major [K, N]; K and V are
// transposed once per call so that every product has that form.
#include "kernels/cpu/flash_attention.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/cpu/vec_math.h"

namespace attend::cpu {
namespace {

using kernels::AttnDims;
using kernels::Mask;

// ---------------------------------------------------------------- micro-kernels

// C[r, 0:N] = (accumulate ? C[r, 0:N] : 0) + alpha * sum_k A[r, k] B[k, 0:N], r < R.
template <typename T>
void rows_gemm_generic(int64_t R, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
                       const T* B, int64_t ldb, T* C, int64_t ldc, bool accumulate) {
  for (int64_t r = 0; r < R; ++r) {
    T* c = C + r * ldc;
    if (!accumulate) std::fill(c, c + N, T(0));
    for (int64_t k = 0; k < K; ++k) {
      const T a = alpha * A[r * lda + k];
      const T* b = B + k * ldb;
      for (int64_t n = 0; n < N; ++n) c[n] += a * b[n];
    }
  }
}

// AVX-512 block: RB rows x NV 16-float vectors of C held in registers over the whole K loop.
template <int RB, int NV>
__attribute__((target("avx512f"), always_inline)) inline void block_avx512(
    int64_t K, float alpha, const float* A, int64_t lda, const float* B, int64_t ldb, float* C,
    int64_t ldc, bool accumulate, __mmask16 last) {
  __m512 acc[RB][NV];
  for (int r = 0; r < RB; ++r)
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_setzero_ps();
  for (int64_t k = 0; k < K; ++k) {
    __m512 b[NV];
    for (int v = 0; v < NV; ++v)
      b[v] = v == NV - 1 ? _mm512_maskz_loadu_ps(last, B + k * ldb + 16 * v)
                         : _mm512_loadu_ps(B + k * ldb + 16 * v);
    for (int r = 0; r < RB; ++r) {
      const __m512 a = _mm512_set1_ps(A[r * lda + k]);
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_fmadd_ps(a, b[v], acc[r][v]);
    }
  }
  const __m512 va = _mm512_set1_ps(alpha);
  for (int r = 0; r < RB; ++r)
    for (int v = 0; v < NV; ++v) {
      float* c = C + r * ldc + 16 * v;
      const __mmask16 mk = v == NV - 1 ? last : static_cast<__mmask16>(0xffff);
      __m512 out = _mm512_mul_ps(acc[r][v], va);
      if (accumulate) out = _mm512_add_ps(out, _mm512_maskz_loadu_ps(mk, c));
      _mm512_mask_storeu_ps(c, mk, out);
    }
}

template <int RB>
__attribute__((target("avx512f"))) void rows_avx512(int64_t N, int64_t K, float alpha,
                                                    const float* A, int64_t lda, const float* B,
                                                    int64_t ldb, float* C, int64_t ldc,
                                                    bool accumulate) {
  for (int64_t n0 = 0; n0 < N; n0 += 64) {
    const int64_t nb = std::min<int64_t>(64, N - n0);
    const int nv = static_cast<int>((nb + 15) / 16);
    const int tail = static_cast<int>(nb - 16 * (nv - 1));
    const __mmask16 last = static_cast<__mmask16>(tail == 16 ? 0xffff : (1u << tail) - 1);
    const float* b = B + n0;
    float* c = C + n0;
    switch (nv) {
      case 1: block_avx512<RB, 1>(K, alpha, A, lda, b, ldb, c, ldc, accumulate, last); break;
      case 2: block_avx512<RB, 2>(K, alpha, A, lda, b, ldb, c, ldc, accumulate, last); break;
      case 3: block_avx512<RB, 3>(K, alpha, A, lda, b, ldb, c, ldc, accumulate, last); break;
      default: block_avx512<RB, 4>(K, alpha, A, lda, b, ldb, c, ldc, accumulate, last); break;
    }
  }
}

bool has_avx512() {
  static const bool yes = __builtin_cpu_supports("avx512f");
  return yes;
}

template <typename T>
void rows_gemm(int64_t R, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
               int64_t ldb, T* C, int64_t ldc, bool accumulate) {
  if constexpr (std::is_same_v<T, float>) {
    if (has_avx512()) {
      int64_t r = 0;
      for (; r + 4 <= R; r += 4)
        rows_avx512<4>(N, K, alpha, A + r * lda, lda, B, ldb, C + r * ldc, ldc, accumulate);
      for (; r < R; ++r)
        rows_avx512<1>(N, K, alpha, A + r * lda, lda, B, ldb, C + r * ldc, ldc, accumulate);
      return;
    }
  }
  rows_gemm_generic<T>(R, N, K, alpha, A, lda, B, ldb, C, ldc, accumulate);
}

// dst [cols, rows] = src [rows, cols]^T (src row stride lds, dst row stride ldd).
template <typename T>
void transpose(const T* src, int64_t rows, int64_t cols, int64_t lds, T* dst, int64_t ldd) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) dst[c * ldd + r] = src[r * lds + c];
}

// ---------------------------------------------------------------- row operations
// float: multiversioned loops with the vectorisable fast_exp; double: plain loops with std::exp.

ATTEND_MULTIVERSION float exp_sub_sum_f(float* x, int64_t n, float mx) {
  float sum = 0.f;
  for (int64_t j = 0; j < n; ++j) {
    x[j] = fast_exp(x[j] - mx);
    sum += x[j];
  }
  return sum;
}
ATTEND_MULTIVERSION float max_f(const float* x, int64_t n) { return row_max(x, n); }
ATTEND_MULTIVERSION void scale_f(float* x, int64_t n, float a) {
  for (int64_t j = 0; j < n; ++j) x[j] *= a;
}
ATTEND_MULTIVERSION void ds_f(const float* p, float* dp, int64_t n, float delta) {
  for (int64_t j = 0; j < n; ++j) dp[j] = p[j] * (dp[j] - delta);
}
ATTEND_MULTIVERSION float dot_f(const float* a, const float* b, int64_t n) {
  float acc = 0.f;
  for (int64_t j = 0; j < n; ++j) acc += a[j] * b[j];
  return acc;
}

template <typename T>
T max_row(const T* x, int64_t n) {
  if constexpr (std::is_same_v<T, float>) {
    return max_f(x, n);
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
    return exp_sub_sum_f(x, n, mx);
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

bool tile_may_be_visible(const Mask& m, int64_t b, int64_t i0, int64_t i1, int64_t j0, int64_t j1,
                         int64_t Tk) {
  if (j0 >= m.limit(b, i1 - 1, Tk)) return false;  // the last row has the largest limit
  if (m.window < 0) return true;
  const int64_t p0 = i0 + m.query_offset, p1 = i1 - 1 + m.query_offset;
  if (p0 < m.global_tokens || j0 < m.global_tokens) return true;
  return j0 <= p1 + m.window && j1 - 1 >= p0 - m.window;
}

template <typename T>
void flash_attention(const T* q, const T* k, const T* v, T* o, T* lse, const AttnDims& d,
                     const Mask& m, double scale_d) {
  const int64_t BH = d.B * d.H, Dh = d.Dh, Tq = d.Tq, Tk = d.Tk;
  if (BH == 0 || Tq == 0) return;
  const T scale = static_cast<T>(scale_d);
  // K transposed per head: kt [BH, Dh, Tk], so S = Q_tile kt[:, tile] is a rows_gemm.
  std::vector<T> kt(static_cast<size_t>(BH * Dh * Tk));
  parallel_for(BH, 1, [&](int64_t s, int64_t e) {
    for (int64_t bh = s; bh < e; ++bh) transpose(k + bh * Tk * Dh, Tk, Dh, Dh, kt.data() + bh * Dh * Tk, Tk);
  });
  const int64_t nqt = (Tq + kTileQ - 1) / kTileQ;
  parallel_for(BH * nqt, 1, [&](int64_t s, int64_t e) {
    std::vector<T> S(kTileQ * kTileK), acc(kTileQ * Dh), mrow(kTileQ), lrow(kTileQ);
    for (int64_t item = s; item < e; ++item) {
      const int64_t bh = item / nqt, t = item % nqt;
      // Zig-zag over query tiles so that contiguous ranges mix cheap and costly (causal) tiles.
      const int64_t qt = (t % 2 == 0) ? t / 2 : nqt - 1 - t / 2;
      const int64_t b = bh / d.H, i0 = qt * kTileQ, i1 = std::min(Tq, i0 + kTileQ), nq = i1 - i0;
      const T* qb = q + (bh * Tq + i0) * Dh;
      std::fill(acc.begin(), acc.begin() + nq * Dh, T(0));
      std::fill(mrow.begin(), mrow.end(), -std::numeric_limits<T>::infinity());
      std::fill(lrow.begin(), lrow.end(), T(0));
      for (int64_t j0 = 0; j0 < Tk; j0 += kTileK) {
        const int64_t j1 = std::min(Tk, j0 + kTileK), nk = j1 - j0;
        if (!tile_may_be_visible(m, b, i0, i1, j0, j1, Tk)) continue;
        rows_gemm<T>(nq, nk, Dh, scale, qb, Dh, kt.data() + bh * Dh * Tk + j0, Tk, S.data(), kTileK,
                     false);
        const bool full = tile_fully_visible(m, b, i0, i1, j0, j1, Tk);
        for (int64_t r = 0; r < nq; ++r) {
          T* srow = S.data() + r * kTileK;
          if (!full)
            for (int64_t c = 0; c < nk; ++c)
              if (!m.allowed(b, i0 + r, j0 + c, Tk)) srow[c] = -std::numeric_limits<T>::infinity();
          const T tile_max = max_row(srow, nk);
          const T mx = tile_max > mrow[r] ? tile_max : mrow[r];
          if (mx == -std::numeric_limits<T>::infinity()) {  // nothing visible yet in this row
            std::fill(srow, srow + nk, T(0));
            continue;
          }
          const T alpha = std::exp(mrow[r] - mx);  // rescales what was accumulated so far
          const T sum = exp_sub_sum(srow, nk, mx);
          lrow[r] = lrow[r] * alpha + sum;
          mrow[r] = mx;
          if (alpha != T(1)) scale_row(acc.data() + r * Dh, Dh, alpha);
        }
        rows_gemm<T>(nq, Dh, nk, T(1), S.data(), kTileK, v + (bh * Tk + j0) * Dh, Dh, acc.data(), Dh,
                     true);
      }
      for (int64_t r = 0; r < nq; ++r) {
        T* orow = o + (bh * Tq + i0 + r) * Dh;
        const T l = lrow[r];
        const T inv = l > T(0) ? T(1) / l : T(0);
        for (int64_t c = 0; c < Dh; ++c) orow[c] = acc[r * Dh + c] * inv;
        lse[bh * Tq + i0 + r] =
            l > T(0) ? mrow[r] + std::log(l) : -std::numeric_limits<T>::infinity();
      }
    }
  });
}

template <typename T>
void flash_attention_backward(const T* q, const T* k, const T* v, const T* o, const T* lse,
                              const T* dout, T* dq, T* dk, T* dv, const AttnDims& d,
                              const Mask& m, double scale_d) {
  const int64_t BH = d.B * d.H, Dh = d.Dh, Tq = d.Tq, Tk = d.Tk;
  if (BH == 0) return;
  const T scale = static_cast<T>(scale_d);
  std::fill(dq, dq + BH * Tq * Dh, T(0));
  if (Tq == 0) {
    std::fill(dk, dk + BH * Tk * Dh, T(0));
    std::fill(dv, dv + BH * Tk * Dh, T(0));
    return;
  }
  // delta[i] = <dO_i, O_i> (the softmax-backward row term); V transposed per head.
  std::vector<T> delta(static_cast<size_t>(BH * Tq)), vt(static_cast<size_t>(BH * Dh * Tk)),
      kt(static_cast<size_t>(BH * Dh * Tk));
  parallel_for(BH, 1, [&](int64_t s, int64_t e) {
    for (int64_t bh = s; bh < e; ++bh) {
      for (int64_t i = 0; i < Tq; ++i)
        delta[bh * Tq + i] = dot(dout + (bh * Tq + i) * Dh, o + (bh * Tq + i) * Dh, Dh);
      transpose(v + bh * Tk * Dh, Tk, Dh, Dh, vt.data() + bh * Dh * Tk, Tk);
      transpose(k + bh * Tk * Dh, Tk, Dh, Dh, kt.data() + bh * Dh * Tk, Tk);
    }
  });
  // Work items: (head, chunk of key tiles). With fewer heads than threads the key tiles of a
  // head are split across items, each with a private dQ buffer summed at the end.
  const int64_t nkt = (Tk + kTileK - 1) / kTileK;
  const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(nkt, (num_threads() + BH - 1) / BH));
  std::vector<T> dq_private(chunks > 1 ? static_cast<size_t>(BH * chunks * Tq * Dh) : 0, T(0));
  parallel_for(BH * chunks, 1, [&](int64_t s, int64_t e) {
    std::vector<T> S(kTileQ * kTileK), dS(kTileQ * kTileK), Pt(kTileK * kTileQ),
        dSt(kTileK * kTileQ), dk_acc(kTileK * Dh), dv_acc(kTileK * Dh);
    for (int64_t item = s; item < e; ++item) {
      const int64_t bh = item / chunks, chunk = item % chunks, b = bh / d.H;
      T* dq_out = chunks > 1 ? dq_private.data() + item * Tq * Dh : dq + bh * Tq * Dh;
      const int64_t kt0 = nkt * chunk / chunks, kt1 = nkt * (chunk + 1) / chunks;
      for (int64_t ktile = kt0; ktile < kt1; ++ktile) {
        const int64_t j0 = ktile * kTileK, j1 = std::min(Tk, j0 + kTileK), nk = j1 - j0;
        std::fill(dk_acc.begin(), dk_acc.begin() + nk * Dh, T(0));
        std::fill(dv_acc.begin(), dv_acc.begin() + nk * Dh, T(0));
        for (int64_t i0 = 0; i0 < Tq; i0 += kTileQ) {
          const int64_t i1 = std::min(Tq, i0 + kTileQ), nq = i1 - i0;
          if (!tile_may_be_visible(m, b, i0, i1, j0, j1, Tk)) continue;
          const T* qb = q + (bh * Tq + i0) * Dh;
          const T* dob = dout + (bh * Tq + i0) * Dh;
          // P = exp(scale q k^T - lse), masked entries 0.
          rows_gemm<T>(nq, nk, Dh, scale, qb, Dh, kt.data() + bh * Dh * Tk + j0, Tk, S.data(),
                       kTileK, false);
          const bool full = tile_fully_visible(m, b, i0, i1, j0, j1, Tk);
          for (int64_t r = 0; r < nq; ++r) {
            const T l = lse[bh * Tq + i0 + r];
            T* srow = S.data() + r * kTileK;
            if (l == -std::numeric_limits<T>::infinity()) {
              std::fill(srow, srow + nk, T(0));
              continue;
            }
            if (!full)
              for (int64_t c = 0; c < nk; ++c)
                if (!m.allowed(b, i0 + r, j0 + c, Tk)) srow[c] = -std::numeric_limits<T>::infinity();
            exp_sub_sum(srow, nk, l);
          }
          // dV += P^T dO
          transpose(S.data(), nq, nk, kTileK, Pt.data(), kTileQ);
          rows_gemm<T>(nk, Dh, nq, T(1), Pt.data(), kTileQ, dob, Dh, dv_acc.data(), Dh, true);
          // dP = dO V^T;  dS = P * (dP - delta)
          rows_gemm<T>(nq, nk, Dh, T(1), dob, Dh, vt.data() + bh * Dh * Tk + j0, Tk, dS.data(),
                       kTileK, false);
          for (int64_t r = 0; r < nq; ++r)
            ds_row(S.data() + r * kTileK, dS.data() + r * kTileK, nk, delta[bh * Tq + i0 + r]);
          // dQ += scale dS K;  dK += scale dS^T Q
          rows_gemm<T>(nq, Dh, nk, scale, dS.data(), kTileK, k + (bh * Tk + j0) * Dh, Dh,
                       dq_out + i0 * Dh, Dh, true);
          transpose(dS.data(), nq, nk, kTileK, dSt.data(), kTileQ);
          rows_gemm<T>(nk, Dh, nq, scale, dSt.data(), kTileQ, qb, Dh, dk_acc.data(), Dh, true);
        }
        std::copy(dk_acc.begin(), dk_acc.begin() + nk * Dh, dk + (bh * Tk + j0) * Dh);
        std::copy(dv_acc.begin(), dv_acc.begin() + nk * Dh, dv + (bh * Tk + j0) * Dh);
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
        }
    });
}

template void flash_attention<float>(const float*, const float*, const float*, float*, float*,
                                     const AttnDims&, const Mask&, double);
template void flash_attention<double>(const double*, const double*, const double*, double*,
                                      double*, const AttnDims&, const Mask&, double);
template void flash_attention_backward<float>(const float*, const float*, const float*,
                                              const float*, const float*, const float*, float*,
                                              float*, float*, const AttnDims&, const Mask&, double);
template void flash_attention_backward<double>(const double*, const double*, const double*,
                                               const double*, const double*, const double*,
                                               double*, double*, double*, const AttnDims&,
                                               const Mask&, double);

}  // namespace attend::cpu
