// int8 products for quantized inference (see cpu.h, gemm_int8): C = (A W^T) * sa * sw + bias,
// A [M, K] and W [N, K] int8 in [-127, 127], int32 accumulation (exact), then the scales.
//
// Our AVX2 kernel streams W in pairs of rows against blocks of up to 96 rows of A (kept in
// cache), five rows of A at a time: |a| (u8) times w carrying a's sign (s8) through vpmaddubsw,
// whose pair sums cannot saturate since |a|, |w| <= 127 (2 * 127 * 127 < 32767), then vpmaddwd into
// int32. On a CPU with VNNI or AMX int8, products of more than kSmallM rows (a source sentence, a
// prompt) go to oneDNN's u8 x s8 -> s32 matmul instead, on a + 128 with the 128 * sum_k w[n, k]
// this adds subtracted afterwards. Not on AVX2 alone: there oneDNN's u8 x s8 kernel sums pairs with
// vpmaddubsw, which saturates for u8 values above 128 (measured: wrong sums on the AMD host of
// docs/results.md), so there our kernel runs every shape.
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <tuple>
#include <vector>

#include "core/cpu_info.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/cpu/cpu.h"

namespace attend::cpu {
namespace {

// With VNNI or AMX int8, up to this many rows the streaming kernel runs (oneDNN packs W on
// every call, which few rows do not repay); beyond, oneDNN's matmul.
constexpr int64_t kSmallM = 48;
// Rows of A per block of the streaming kernel (96 rows of K = 1024: 96 KiB, in L2).
constexpr int64_t kRowBlock = 96;

bool onednn_int8_exact() {
  const CpuInfo& c = cpu_info();
  return c.avx512_vnni || (c.amx_int8 && c.amx_permitted);
}

void scale_row(const int32_t* acc, float sa, const float* sw, const float* bias, float* c,
               int64_t N) {
  for (int64_t n = 0; n < N; ++n)
    c[n] = static_cast<float>(acc[n]) * (sa * sw[n]) + (bias ? bias[n] : 0.f);
}

// Where the streaming kernel writes: C[m, n] = sum * sa[m] * sw[n] + bias[n], straight from
// the int32 sum (no [M, N] int32 buffer: at 128 rows of a 32k projection that is 16 MB a step).
struct Out {
  const float *sa, *sw, *bias;
  float* C;
  int64_t N;
  void put(int64_t m, int64_t n, int32_t sum) const {
    C[m * N + n] = static_cast<float>(sum) * (sa[m] * sw[n]) + (bias ? bias[n] : 0.f);
  }
};

int32_t dot_scalar(const int8_t* a, const int8_t* w, int64_t k0, int64_t K) {
  int32_t s = 0;
  for (int64_t k = k0; k < K; ++k) s += static_cast<int32_t>(a[k]) * static_cast<int32_t>(w[k]);
  return s;
}

// The sums of each of v[0..7]'s eight lanes, in order: [sum v0, ..., sum v7].
__attribute__((target("avx2"))) inline __m256i hsum8(const __m256i* v) {
  const __m256i g0 =
      _mm256_hadd_epi32(_mm256_hadd_epi32(v[0], v[1]), _mm256_hadd_epi32(v[2], v[3]));
  const __m256i g1 =
      _mm256_hadd_epi32(_mm256_hadd_epi32(v[4], v[5]), _mm256_hadd_epi32(v[6], v[7]));
  return _mm256_add_epi32(_mm256_permute2x128_si256(g0, g1, 0x20),
                          _mm256_permute2x128_si256(g0, g1, 0x31));
}

// One tile: RA rows of A (from row m) against RW weight rows (from row n), 32 values of k per
// step in RA x RW int32 accumulators; the k % 32 tail in scalar code.
template <int RA, int RW>
__attribute__((target("avx2"))) inline void tile_avx2(int64_t K, const int8_t* a, const int8_t* w,
                                                      const Out& out, int64_t m, int64_t n) {
  const int64_t K32 = K / 32 * 32;
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i s[RA][RW];
  for (auto& r : s)
    for (auto& x : r) x = _mm256_setzero_si256();
  for (int64_t k = 0; k < K32; k += 32) {
    for (int i = 0; i < RA; ++i) {
      const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + i * K + k));
      const __m256i ax = _mm256_sign_epi8(x, x);
      for (int j = 0; j < RW; ++j) {
        const __m256i wj = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + j * K + k));
        const __m256i p = _mm256_maddubs_epi16(ax, _mm256_sign_epi8(wj, x));
        s[i][j] = _mm256_add_epi32(s[i][j], _mm256_madd_epi16(p, ones));
      }
    }
  }
  // The RA x RW sums, eight at a time through one tree of horizontal adds.
  const __m256i zero = _mm256_setzero_si256();
  for (int g = 0; g < RA * RW; g += 8) {
    __m256i v[8];
    for (int t = 0; t < 8; ++t) v[t] = g + t < RA * RW ? s[(g + t) / RW][(g + t) % RW] : zero;
    alignas(32) int32_t sum[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(sum), hsum8(v));
    for (int t = 0; t < 8 && g + t < RA * RW; ++t) {
      const int i = (g + t) / RW, j = (g + t) % RW;
      const int32_t tail = K32 < K ? dot_scalar(a + i * K, w + j * K, K32, K) : 0;
      out.put(m + i, n + j, sum[t] + tail);
    }
  }
}

// RA rows of A (from row m) against weight rows n in [n0, n1): pairs of weight rows, then the
// odd one.
template <int RA>
__attribute__((target("avx2"))) void strip_avx2(int64_t K, const int8_t* a, const int8_t* W,
                                                int64_t n0, int64_t n1, const Out& out, int64_t m) {
  int64_t n = n0;
  for (; n + 2 <= n1; n += 2) tile_avx2<RA, 2>(K, a, W + n * K, out, m, n);
  if (n < n1) tile_avx2<RA, 1>(K, a, W + n * K, out, m, n);
}

// The last R or fewer rows (r of them) as one strip of tiles r rows high.
template <int R>
__attribute__((target("avx2"))) void last_rows_avx2(int64_t r, int64_t K, const int8_t* a,
                                                    const int8_t* W, int64_t n0, int64_t n1,
                                                    const Out& out, int64_t m) {
  if constexpr (R > 0) {
    if (r == R)
      strip_avx2<R>(K, a, W, n0, n1, out, m);
    else
      last_rows_avx2<R - 1>(r, K, a, W, n0, n1, out, m);
  }
}

// Rows m of A against weight rows n in [n0, n1), into `out` (row offset m0): tiles of five
// activation rows against two weight rows (10 accumulators), five rows of A against the whole
// range of W (a task's ~16 KiB, in L1) before the next five, so that C is written in runs
// along its rows, and the sums reduced eight at a time (hsum8).
constexpr int kTileRows = 5;
__attribute__((target("avx2"))) void dots_avx2(int64_t M, int64_t K, const int8_t* A,
                                               const int8_t* W, int64_t n0, int64_t n1,
                                               const Out& out, int64_t m0) {
  int64_t m = 0;
  for (; m + kTileRows <= M; m += kTileRows)
    strip_avx2<kTileRows>(K, A + m * K, W, n0, n1, out, m0 + m);
  last_rows_avx2<kTileRows - 1>(M - m, K, A + m * K, W, n0, n1, out, m0 + m);
}

void dots_scalar(int64_t M, int64_t K, const int8_t* A, const int8_t* W, int64_t n0, int64_t n1,
                 const Out& out, int64_t m0) {
  for (int64_t n = n0; n < n1; ++n)
    for (int64_t m = 0; m < M; ++m) out.put(m0 + m, n, dot_scalar(A + m * K, W + n * K, 0, K));
}

// oneDNN u8 x s8 -> s32 matmuls, one primitive per shape, built on first use and kept.
class Int8MatmulCache {
 public:
  void run(int64_t M, int64_t N, int64_t K, const uint8_t* A, const int8_t* W, int32_t* C) {
    using dnnl::memory;
    const memory::desc a_md({M, K}, memory::data_type::u8, {K, 1});
    const memory::desc b_md({K, N}, memory::data_type::s8, {1, K});
    const memory::desc c_md({M, N}, memory::data_type::s32, {N, 1});
    std::lock_guard<std::mutex> lock(mu_);  // one scratchpad per primitive (see gemm.cpp)
    const Key key{M, N, K};
    auto it = prims_.find(key);
    if (it == prims_.end()) {
      if (prims_.size() >= kMaxPrimitives) prims_.clear();
      const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a_md, b_md, c_md), engine_);
      it = prims_.emplace(key, dnnl::matmul(pd)).first;
    }
    memory a(a_md, engine_, const_cast<uint8_t*>(A)), b(b_md, engine_, const_cast<int8_t*>(W)),
        c(c_md, engine_, C);
    it->second.execute(stream_, {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_DST, c}});
    stream_.wait();
  }

 private:
  using Key = std::tuple<int64_t, int64_t, int64_t>;
  static constexpr size_t kMaxPrimitives = 1024;
  dnnl::engine engine_{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream_{engine_};
  std::mutex mu_;
  std::map<Key, dnnl::matmul> prims_;
};

}  // namespace

std::string int8_kernel_description() {
  std::string s = __builtin_cpu_supports("avx2") ? "avx2 kernel" : "scalar kernel (no avx2)";
  s += onednn_int8_exact() ? "; oneDNN above 48 rows (vnni/amx)"
                           : "; oneDNN: no (needs avx512_vnni or amx_int8)";
  return s;
}

void gemm_int8(int64_t M, int64_t N, int64_t K, const int8_t* A, const float* sa, const int8_t* W,
               const float* sw, const float* bias, float* C) {
  if (M == 0 || N == 0) return;
  static const bool use_onednn = onednn_int8_exact();
  if (M <= kSmallM || K == 0 || !use_onednn) {
    static const bool avx2 = __builtin_cpu_supports("avx2");
    const Out out{sa, sw, bias, C, N};
    // Blocks of 2 weight rows; a task gets enough of them to stream ~16 KiB of W.
    const int64_t blocks = (N + 1) / 2;
    const int64_t grain = std::max<int64_t>(1, (1 << 13) / std::max<int64_t>(K, 1));
    for (int64_t m0 = 0; m0 < M; m0 += kRowBlock) {
      const int64_t mb = std::min(kRowBlock, M - m0);
      parallel_for(blocks, grain, [&](int64_t b0, int64_t b1) {
        const int64_t n0 = b0 * 2, n1 = std::min(N, b1 * 2);
        if (avx2)
          dots_avx2(mb, K, A + m0 * K, W, n0, n1, out, m0);
        else
          dots_scalar(mb, K, A + m0 * K, W, n0, n1, out, m0);
      });
    }
    return;
  }
  std::vector<int32_t> acc(static_cast<size_t>(M * N));
  std::vector<uint8_t> au(static_cast<size_t>(M * K));
  for (size_t i = 0; i < au.size(); ++i) au[i] = static_cast<uint8_t>(A[i] + 128);
  static Int8MatmulCache cache;
  try {
    cache.run(M, N, K, au.data(), W, acc.data());
  } catch (const dnnl::error& e) {
    ATTEND_FAIL("gemm_int8: oneDNN matmul failed (M {} N {} K {}): {}", M, N, K, e.what());
  }
  std::vector<int32_t> shift(static_cast<size_t>(N));
  parallel_for(N, row_grain(K), [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
      int32_t s = 0;
      for (int64_t k = 0; k < K; ++k) s += W[n * K + k];
      shift[static_cast<size_t>(n)] = 128 * s;
    }
  });
  parallel_for(M, row_grain(N), [&](int64_t m0, int64_t m1) {
    for (int64_t m = m0; m < m1; ++m) {
      int32_t* row = acc.data() + m * N;
      for (int64_t n = 0; n < N; ++n) row[n] -= shift[static_cast<size_t>(n)];
      scale_row(row, sa[m], sw, bias, C + m * N, N);
    }
  });
}

}  // namespace attend::cpu
