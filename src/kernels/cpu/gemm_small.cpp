// C = alpha * A B^T + beta * C for a few rows of A: the shape of every linear layer while
// decoding (A = the batch's current positions, B = a weight matrix [N, K]).
//
// A BLAS packs B into panels on every call, which costs a pass over the whole weight matrix for
// a product that does only M multiply-adds per weight (docs/gemm.md). Here B is read in place,
// once: the roles are swapped so that the weight is the broadcast operand. C^T [N, M] is
// computed in blocks of NR weight rows x 16*MV rows of A, with A transposed once per call into
// panels of 32 rows, At [ceil(M / 32)][K][32] (zero-padded), so that the vector operand of a
// block is one contiguous stream. Each
// block keeps NR x MV accumulators in registers over the whole K loop and walks NR weight rows
// forward together; the block of B stays in L1/L2 while the m blocks reuse it.
//
// Every element of C is a plain sum over k in order, so a row's result does not depend on M
// or on the other rows (decoding one sentence or a batch gives the same numbers).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC bug 105593, see flash_attention.cpp
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <algorithm>
#include <type_traits>
#include <vector>

#include "core/thread_pool.h"
#include "core/types.h"
#include "kernels/cpu/cpu.h"
#include "kernels/cpu/gemm_small.h"

#include <string>
#include "kernels/cpu/vec_math.h"

namespace attend::cpu {
namespace {

// Weights are f32, or bf16 (the upper half of an f32: widened by a 16-bit shift, exactly).
__attribute__((target("avx512f"), always_inline)) inline __m512 load16(const float* p) {
  return _mm512_loadu_ps(p);
}
__attribute__((target("avx512f"), always_inline)) inline __m512 load16(const uint16_t* p) {
  const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}
// The first n < 16 weights, the rest zero.
__attribute__((target("avx512f"), always_inline)) inline __m512 load_head(const float* p,
                                                                          int64_t n) {
  return _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << n) - 1), p);
}
__attribute__((target("avx512f"), always_inline)) inline __m512 load_head(const uint16_t* p,
                                                                          int64_t n) {
  alignas(32) uint16_t h[16] = {};  // a masked 16-bit load would need AVX-512 BW/VL
  std::copy(p, p + n, h);
  return load16(h);
}
inline float scalar(float x) { return x; }
inline float scalar(uint16_t x) { return from_bf16(bf16{x}); }

template <int NR, int MV, typename W>
__attribute__((target("avx512f"), always_inline)) inline void step(__m512 (&acc)[NR][MV],
                                                                   const float* at,
                                                                   const W* B, int64_t ldb,
                                                                   int64_t k) {
  __m512 a[MV];
  for (int v = 0; v < MV; ++v) a[v] = _mm512_loadu_ps(at + 16 * v);
  for (int r = 0; r < NR; ++r) {
    const __m512 b = _mm512_set1_ps(scalar(B[r * ldb + k]));
    for (int v = 0; v < MV; ++v) acc[r][v] = _mm512_fmadd_ps(b, a[v], acc[r][v]);
  }
}

constexpr int64_t kPanel = 32;  // rows of A per panel of At

// acc[r][v] = sum_k B[r * ldb + k] * At[k * 32 + 16 v + lane]; written to out[r * 16 MV + ...].
template <int NR, int MV, typename W>
__attribute__((target("avx512f"))) void block(int64_t K, const float* At,
                                              const W* B, int64_t ldb, float* out) {
  __m512 acc[NR][MV];
  for (int r = 0; r < NR; ++r)
    for (int v = 0; v < MV; ++v) acc[r][v] = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 16 <= K; k += 16) {
    // One cache line of each weight row per 16 k: fetch the same line of the next block's rows
    // (the hardware prefetcher ramps up too slowly on NR short interleaved streams).
    for (int r = 0; r < NR; ++r)
      _mm_prefetch(reinterpret_cast<const char*>(B + (NR + r) * ldb + k), _MM_HINT_T0);
    if constexpr (std::is_same_v<W, float>) {
      for (int64_t j = 0; j < 16; ++j)
        step<NR, MV, W>(acc, At + (k + j) * kPanel, B, ldb, k + j);
    } else {  // bf16: widen the NR x 16 weights once (vector), then broadcast them as f32
      alignas(64) float wide[NR * 16];
      for (int r = 0; r < NR; ++r) _mm512_store_ps(wide + 16 * r, load16(B + r * ldb + k));
      for (int64_t j = 0; j < 16; ++j)
        step<NR, MV, float>(acc, At + (k + j) * kPanel, wide, 16, j);
    }
  }
  for (; k < K; ++k) step<NR, MV, W>(acc, At + k * kPanel, B, ldb, k);
  for (int r = 0; r < NR; ++r)
    for (int v = 0; v < MV; ++v) _mm512_storeu_ps(out + r * 16 * MV + 16 * v, acc[r][v]);
}

// One block of NR weight rows (nr of them real) against all M rows of A.
template <int NR, typename W>
__attribute__((target("avx512f"))) void weight_rows(int64_t M, int64_t nr, int64_t K, float alpha,
                                                    const float* At, const W* B,
                                                    int64_t ldb, float beta, float* C,
                                                    int64_t ldc) {
  alignas(64) float out[NR * 32];
  for (int64_t m0 = 0; m0 < M; m0 += 32) {
    const int64_t mb = std::min<int64_t>(32, M - m0);
    const int mv = mb > 16 ? 2 : 1;
    if (mv == 2)
      block<NR, 2, W>(K, At + m0 * K, B, ldb, out);
    else
      block<NR, 1, W>(K, At + m0 * K, B, ldb, out);
    const int width = 16 * mv;
    for (int64_t m = 0; m < mb; ++m) {
      float* c = C + (m0 + m) * ldc;
      if (beta == 0.f)
        for (int64_t r = 0; r < nr; ++r) c[r] = alpha * out[r * width + m];
      else
        for (int64_t r = 0; r < nr; ++r) c[r] = alpha * out[r * width + m] + beta * c[r];
    }
  }
}

// Fewer than 16 rows of A would leave most lanes of the broadcast form idle; there the product
// is MR x NR dot products along k instead (16 k per vector, sums reduced at the end), reading
// each weight row once per MR rows of A.
template <int MR, int NR, typename W>
__attribute__((target("avx512f"))) void dot_block(int64_t K, float alpha, const float* A,
                                                  int64_t lda, const W* B, int64_t ldb,
                                                  float beta, float* C, int64_t ldc) {
  __m512 acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int r = 0; r < NR; ++r) acc[i][r] = _mm512_setzero_ps();
  int64_t k = 0;
  if constexpr (!std::is_same_v<W, float>) {
    // bf16: 32 k (one 64-byte line of each row) per iteration, twice the bytes in flight of the
    // 16-k loop below; the sums run in the same order.
    for (; k + 32 <= K; k += 32) {
      __m512 lo[NR], hi[NR];
      for (int r = 0; r < NR; ++r) {
        const __m512i h = _mm512_loadu_si512(B + r * ldb + k);
        lo[r] = _mm512_castsi512_ps(
            _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_castsi512_si256(h)), 16));
        hi[r] = _mm512_castsi512_ps(
            _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(h, 1)), 16));
        _mm_prefetch(reinterpret_cast<const char*>(B + (NR + r) * ldb + k), _MM_HINT_T0);
      }
      for (int i = 0; i < MR; ++i) {
        const __m512 a0 = _mm512_loadu_ps(A + i * lda + k);
        const __m512 a1 = _mm512_loadu_ps(A + i * lda + k + 16);
        for (int r = 0; r < NR; ++r) acc[i][r] = _mm512_fmadd_ps(a0, lo[r], acc[i][r]);
        for (int r = 0; r < NR; ++r) acc[i][r] = _mm512_fmadd_ps(a1, hi[r], acc[i][r]);
      }
    }
  }
  for (; k + 16 <= K; k += 16) {
    __m512 b[NR];
    for (int r = 0; r < NR; ++r) {
      b[r] = load16(B + r * ldb + k);
      _mm_prefetch(reinterpret_cast<const char*>(B + (NR + r) * ldb + k), _MM_HINT_T0);
    }
    for (int i = 0; i < MR; ++i) {
      const __m512 a = _mm512_loadu_ps(A + i * lda + k);
      for (int r = 0; r < NR; ++r) acc[i][r] = _mm512_fmadd_ps(a, b[r], acc[i][r]);
    }
  }
  if (k < K) {
    const __mmask16 m = static_cast<__mmask16>((1u << (K - k)) - 1);
    __m512 b[NR];
    for (int r = 0; r < NR; ++r) b[r] = load_head(B + r * ldb + k, K - k);
    for (int i = 0; i < MR; ++i) {
      const __m512 a = _mm512_maskz_loadu_ps(m, A + i * lda + k);
      for (int r = 0; r < NR; ++r) acc[i][r] = _mm512_fmadd_ps(a, b[r], acc[i][r]);
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int r = 0; r < NR; ++r) {
      float* c = C + i * ldc + r;
      const float v = alpha * _mm512_reduce_add_ps(acc[i][r]);
      *c = beta == 0.f ? v : v + beta * *c;
    }
}

constexpr int64_t kDotRows = 4;  // weight rows per dot block (MR x 4 accumulators, MR <= 4)

// Weight rows [n0, n0 + nr) against all M (< 16) rows of A, in groups of up to 4 rows of A.
template <int NR, typename W>
__attribute__((target("avx512f"))) void dot_rows(int64_t M, int64_t K, float alpha,
                                                 const float* A, int64_t lda, const W* B,
                                                 int64_t ldb, float beta, float* C, int64_t ldc) {
  int64_t i = 0;
  for (; i + 4 <= M; i += 4)
    dot_block<4, NR, W>(K, alpha, A + i * lda, lda, B, ldb, beta, C + i * ldc, ldc);
  switch (M - i) {
    case 3: dot_block<3, NR, W>(K, alpha, A + i * lda, lda, B, ldb, beta, C + i * ldc, ldc); break;
    case 2: dot_block<2, NR, W>(K, alpha, A + i * lda, lda, B, ldb, beta, C + i * ldc, ldc); break;
    case 1: dot_block<1, NR, W>(K, alpha, A + i * lda, lda, B, ldb, beta, C + i * ldc, ldc); break;
    default: break;
  }
}

constexpr int64_t kRows = 12;  // weight rows per block: 12 x 2 accumulators of 32 zmm registers

}  // namespace

bool sgemm_small_m_applies(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K) {
  return has_avx512() && !trans_a && trans_b && M >= 1 && M <= kSmallM && N >= 1 && K >= 1;
}

std::string small_m_gemm_description() {
  return has_avx512() ? "sgemm_small_m (avx512f; the weight read in place)"
                      : "the GEMM library (sgemm_small_m needs avx512f)";
}

namespace {

template <typename W>
void small_m(int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
             const W* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  // Work is split over blocks of weight rows; a thread gets at least ~64 KiB of them.
  const auto grain_for = [K](int64_t rows) {
    return std::max<int64_t>(1, 65536 / (rows * K * static_cast<int64_t>(sizeof(W))));
  };
  if (M < 16) {
    const int64_t blocks = (N + kDotRows - 1) / kDotRows;
    parallel_for(blocks, grain_for(kDotRows), [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        const int64_t n0 = b * kDotRows, nr = std::min(kDotRows, N - n0);
        const W* Bn = B + n0 * ldb;
        float* Cn = C + n0;
        switch (nr) {
          case 4: dot_rows<4, W>(M, K, alpha, A, lda, Bn, ldb, beta, Cn, ldc); break;
          case 3: dot_rows<3, W>(M, K, alpha, A, lda, Bn, ldb, beta, Cn, ldc); break;
          case 2: dot_rows<2, W>(M, K, alpha, A, lda, Bn, ldb, beta, Cn, ldc); break;
          default: dot_rows<1, W>(M, K, alpha, A, lda, Bn, ldb, beta, Cn, ldc); break;
        }
      }
    });
    return;
  }
  // At: panels of 32 rows of A transposed, [K][32] each, the last padded with zeros; the
  // buffer is reused across calls by this thread.
  const int64_t panels = (M + kPanel - 1) / kPanel;
  thread_local std::vector<float> at;
  at.resize(static_cast<size_t>(panels * K * kPanel));
  for (int64_t p = 0; p < panels; ++p) {
    float* panel = at.data() + p * K * kPanel;
    const int64_t m0 = p * kPanel, rows = std::min(kPanel, M - m0);
    for (int64_t k0 = 0; k0 < K; k0 += 16) {  // 16 k at a time: the lines written stay in L1
      const int64_t k1 = std::min(K, k0 + 16);
      for (int64_t m = 0; m < rows; ++m)
        for (int64_t k = k0; k < k1; ++k) panel[k * kPanel + m] = A[(m0 + m) * lda + k];
      if (rows < kPanel)
        for (int64_t k = k0; k < k1; ++k)
          std::fill(panel + k * kPanel + rows, panel + (k + 1) * kPanel, 0.f);
    }
  }
  const float* At = at.data();

  const int64_t blocks = (N + kRows - 1) / kRows;
  parallel_for(blocks, grain_for(kRows), [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t n0 = b * kRows, nr = std::min(kRows, N - n0);
      if (nr == kRows) {
        weight_rows<kRows, W>(M, nr, K, alpha, At, B + n0 * ldb, ldb, beta, C + n0, ldc);
      } else {  // the last rows: copied into a zero-padded block so the kernel stays fixed-size
        thread_local std::vector<W> tail;
        tail.assign(static_cast<size_t>(kRows * K), W{});
        for (int64_t r = 0; r < nr; ++r)
          std::copy(B + (n0 + r) * ldb, B + (n0 + r) * ldb + K, tail.begin() + r * K);
        weight_rows<kRows, W>(M, nr, K, alpha, At, tail.data(), K, beta, C + n0, ldc);
      }
    }
  });
}

}  // namespace

void sgemm_small_m(int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                   const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  small_m<float>(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void gemm_small_m_bf16w(int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                        int64_t lda, const uint16_t* B, int64_t ldb, float beta, float* C,
                        int64_t ldc) {
  small_m<uint16_t>(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

// Up to kBf16SmallM rows a bf16 weight streams straight from bf16 (cpu::gemm_small_m_bf16w);
// more rows (a prompt read in one pass) widen blocks of weight rows to f32 and run the f32
// product on each, which costs one pass over the weight per call.
constexpr int64_t kBf16SmallM = 64;

// C [R, N] = A [R, K] B^T with B bf16 [N, K] (raw bits): the arithmetic is f32.
void gemm_bf16_weight(int64_t R, int64_t N, int64_t K, const float* A, const uint16_t* B,
                      float* C) {
  if (R <= kBf16SmallM) {
    cpu::gemm_small_m_bf16w(R, N, K, 1.0f, A, K, B, K, 0.0f, C, N);
    return;
  }
  const int64_t block = std::max<int64_t>(16, (int64_t{1} << 18) / K);  // ~1 MiB of f32
  std::vector<float> wide(static_cast<size_t>(std::min(block, N) * K));
  for (int64_t n0 = 0; n0 < N; n0 += block) {
    const int64_t nb = std::min(block, N - n0);
    const uint16_t* src = B + n0 * K;
    for (int64_t i = 0; i < nb * K; ++i) wide[static_cast<size_t>(i)] = from_bf16(bf16{src[i]});
    cpu::sgemm(false, true, R, nb, K, 1.0f, A, K, wide.data(), K, 0.0f, C + n0, N);
  }
}

bool bf16_weights_supported() { return has_avx512(); }

}  // namespace attend::cpu
