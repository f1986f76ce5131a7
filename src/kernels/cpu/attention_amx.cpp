// AMX products of the fused attention (see attention_amx.h). Tile registers are named by
// number in the instructions, so the loops below spell them out: tiles 0-3 accumulate, 4-7
// hold the operands of the step.
#include "kernels/cpu/attention_amx.h"

// GCC 12's AVX-512 intrinsics start from _mm512_undefined_ps(), which its flow analysis reports
// as "may be used uninitialized" (GCC bug 105593): a false positive, silenced for this file.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>

#include "core/error.h"

namespace attend::cpu::amx {
namespace {

bool cpu_and_os_allow() {
#if defined(__x86_64__) && defined(SYS_arch_prctl)
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  const bool avx512f = (b >> 16) & 1, avx512bw = (b >> 30) & 1;
  const bool amx_bf16 = (d >> 22) & 1, amx_tile = (d >> 24) & 1;
  if (!__get_cpuid_count(7, 1, &a, &b, &c, &d)) return false;
  const bool avx512_bf16 = (a >> 5) & 1;
  if (!(avx512f && avx512bw && amx_bf16 && amx_tile && avx512_bf16)) return false;
  // Linux hands out the 8 KiB tile data state only on request (arch_prctl, since 5.16).
  constexpr int kReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kReqXcompPerm, kXfeatureXtiledata) == 0;
#else
  return false;
#endif
}

bool available() {
  static const bool yes = cpu_and_os_allow();
  return yes;
}

std::atomic<bool>& switch_slot() {
  static std::atomic<bool> on{[] {
    const char* s = std::getenv("ATTEND_AMX");
    return available() && !(s && std::strcmp(s, "0") == 0);
  }()};
  return on;
}

struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

constexpr int64_t kKeyTile = 64, kQueryTile = 64;  // kTileK, kTileQ of the fused kernel

#define ATTEND_AMX_TARGET __attribute__((target("avx512f,avx512bw,avx512bf16,amx-tile,amx-bf16")))

// 16 floats -> three bf16 parts, x = hi + mid + lo to within 2^-24 |x| (each part is the bf16
// nearest to what the ones before it leave).
ATTEND_AMX_TARGET inline __m512 widen(__m256i bf16) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(bf16), 16));
}
ATTEND_AMX_TARGET inline void split16(__m512 x, __m256i part[3]) {
  part[0] = reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(x));
  x = _mm512_sub_ps(x, widen(part[0]));
  part[1] = reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(x));
  x = _mm512_sub_ps(x, widen(part[1]));
  part[2] = reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(x));
}

int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

}  // namespace

bool enabled() { return switch_slot().load(std::memory_order_relaxed); }

bool set_enabled(bool on) { return switch_slot().exchange(on && available()); }

namespace {
ATTEND_AMX_TARGET void load_config() {
  TileConfig cfg;
  for (int t = 0; t < 8; ++t) {
    cfg.colsb[t] = 64;
    cfg.rows[t] = 16;
  }
  // Not _tile_loadconfig: GCC 12's version tells the compiler it reads 8 bytes of the
  // configuration, which then drops the stores of the tile sizes as dead.
  __asm__ volatile("ldtilecfg %0" : : "m"(cfg));
}
ATTEND_AMX_TARGET void release() { _tile_release(); }
}  // namespace

TileScope::TileScope() {
  ATTEND_CHECK(available(), "attention: AMX tiles used on a CPU or OS without them");
  load_config();
}

TileScope::~TileScope() { release(); }

ATTEND_AMX_TARGET void split_keys(const float* k, int64_t Tk, int64_t Dh, uint32_t* out) {
  const int64_t Tkp = round_up(Tk, kKeyTile), P = Dh / 2, words = split_words(Tk, Dh);
  alignas(64) uint32_t row[3][128];  // one key's pairs per part (Dh <= 256)
  for (int64_t j = 0; j < Tkp; ++j) {
    if (j < Tk) {
      for (int64_t c = 0; c < Dh; c += 16) {
        __m256i part[3];
        split16(_mm512_loadu_ps(k + j * Dh + c), part);
        for (int s = 0; s < 3; ++s)
          _mm256_store_si256(reinterpret_cast<__m256i*>(row[s] + c / 2), part[s]);
      }
    } else {
      for (auto& r : row) std::fill(r, r + P, 0u);
    }
    // key-tile blocks [Tkp / 64][P][64]: a tile of 16 pair rows x 16 keys has rows 256 B apart
    const int64_t at = (j / kKeyTile) * P * kKeyTile + j % kKeyTile;
    for (int s = 0; s < 3; ++s)
      for (int64_t p = 0; p < P; ++p) out[s * words + at + p * kKeyTile] = row[s][p];
  }
}

ATTEND_AMX_TARGET void split_values(const float* v, int64_t Tk, int64_t Dh, uint32_t* out) {
  const int64_t Tkp = round_up(Tk, kKeyTile), words = split_words(Tk, Dh);
  for (int64_t i = 0; i < Tkp / 2; ++i)
    for (int64_t c = 0; c < Dh; c += 16) {
      const int64_t j = 2 * i;
      const __m512 a = j < Tk ? _mm512_loadu_ps(v + j * Dh + c) : _mm512_setzero_ps();
      const __m512 b = j + 1 < Tk ? _mm512_loadu_ps(v + (j + 1) * Dh + c) : _mm512_setzero_ps();
      __m256i pa[3], pb[3];
      split16(a, pa);
      split16(b, pb);
      // word (i, d): key 2i in the low half, key 2i + 1 in the high half
      for (int s = 0; s < 3; ++s)
        _mm512_storeu_si512(out + s * words + i * Dh + c,
                            _mm512_or_si512(_mm512_cvtepu16_epi32(pa[s]),
                                            _mm512_slli_epi32(_mm512_cvtepu16_epi32(pb[s]), 16)));
    }
}

ATTEND_AMX_TARGET void split_queries(const float* q, int64_t nq, int64_t Dh, float scale,
                                     uint16_t* out) {
  const int64_t rows = round_up(nq, 16), part_size = kQueryTile * Dh;
  const __m512 vs = _mm512_set1_ps(scale);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < Dh; c += 16) {
      __m256i part[3] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256()};
      if (r < nq) split16(_mm512_mul_ps(_mm512_loadu_ps(q + r * Dh + c), vs), part);
      for (int s = 0; s < 3; ++s)
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + s * part_size + r * Dh + c), part[s]);
    }
}

// C tile t += the six products of the split that carry more than 2^-24 of the result:
// hi hi, hi mid, mid hi, hi lo, mid mid, lo hi (A parts in tiles a0-a2, B parts in b0-b2).
#define ATTEND_AMX_SIX(t, a0, a1, a2, b0, b1, b2) \
  do {                                            \
    _tile_dpbf16ps(t, a2, b0);                    \
    _tile_dpbf16ps(t, a1, b1);                    \
    _tile_dpbf16ps(t, a0, b2);                    \
    _tile_dpbf16ps(t, a1, b0);                    \
    _tile_dpbf16ps(t, a0, b1);                    \
    _tile_dpbf16ps(t, a0, b0);                    \
  } while (0)

ATTEND_AMX_TARGET void scores(const uint16_t* qsplit, int64_t nq, int64_t Dh,
                              const uint32_t* ksplit, int64_t words, int64_t j0, int64_t nk,
                              float* S) {
  const int64_t rows = round_up(nq, 16), pairs = (nk + 31) / 32, part_size = kQueryTile * Dh;
  const int64_t qstride = Dh * 2, kstride = kKeyTile * 4;
  const uint32_t* kt = ksplit + (j0 / kKeyTile) * (Dh / 2) * kKeyTile;
  for (int64_t r0 = 0; r0 < rows; r0 += 16)
    for (int64_t p = 0; p < pairs; ++p) {  // 32 keys: two 16 x 16 tiles of S
      _tile_zero(0);
      _tile_zero(1);
      for (int64_t c = 0; c < Dh; c += 32) {
        const uint16_t* qa = qsplit + r0 * Dh + c;
        _tile_loadd(2, qa, qstride);
        _tile_loadd(3, qa + part_size, qstride);
        _tile_loadd(4, qa + 2 * part_size, qstride);
        const uint32_t* kb = kt + (c / 2) * kKeyTile + 32 * p;  // pair row c / 2, key 32 p
        _tile_loadd(5, kb, kstride);
        _tile_loadd(6, kb + words, kstride);
        _tile_loadd(7, kb + 2 * words, kstride);
        ATTEND_AMX_SIX(0, 2, 3, 4, 5, 6, 7);
        _tile_loadd(5, kb + 16, kstride);
        _tile_loadd(6, kb + 16 + words, kstride);
        _tile_loadd(7, kb + 16 + 2 * words, kstride);
        ATTEND_AMX_SIX(1, 2, 3, 4, 5, 6, 7);
      }
      _tile_stored(0, S + r0 * kKeyTile + 32 * p, kKeyTile * 4);
      _tile_stored(1, S + r0 * kKeyTile + 32 * p + 16, kKeyTile * 4);
    }
}

// acc tile t (16 rows x 16 columns) += P V for one 32-key chunk, the V parts loaded one at a
// time into tile 7 (P's parts are in tiles 4-6).
#define ATTEND_AMX_PV_STEP(t)                          \
  do {                                                 \
    _tile_loadd(7, vs + 16 * (t), vstride);            \
    _tile_dpbf16ps(t, 6, 7);                           \
    _tile_dpbf16ps(t, 5, 7);                           \
    _tile_dpbf16ps(t, 4, 7);                           \
    _tile_loadd(7, vs + words + 16 * (t), vstride);    \
    _tile_dpbf16ps(t, 5, 7);                           \
    _tile_dpbf16ps(t, 4, 7);                           \
    _tile_loadd(7, vs + 2 * words + 16 * (t), vstride); \
    _tile_dpbf16ps(t, 4, 7);                           \
  } while (0)

ATTEND_AMX_TARGET void accumulate_pv(const float* S, int64_t nq, int64_t nk, int64_t Dh,
                                     const uint32_t* vsplit, int64_t words, int64_t j0,
                                     uint16_t* psplit, float* acc) {
  const int64_t rows = round_up(nq, 16), chunks = (nk + 31) / 32, cols = 32 * chunks;
  const int64_t part_size = kQueryTile * kKeyTile;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; c += 16) {
      const int64_t left = r < nq ? std::clamp<int64_t>(nk - c, 0, 16) : 0;
      const __mmask16 m = static_cast<__mmask16>(left >= 16 ? 0xffff : (1u << left) - 1);
      __m256i part[3];
      split16(_mm512_maskz_loadu_ps(m, S + r * kKeyTile + c), part);
      for (int s = 0; s < 3; ++s)
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(psplit + s * part_size + r * kKeyTile + c),
                            part[s]);
    }
  const int64_t astride = Dh * 4, pstride = kKeyTile * 2, vstride = Dh * 4;
  for (int64_t r0 = 0; r0 < rows; r0 += 16)
    for (int64_t d0 = 0; d0 < Dh; d0 += 64) {  // up to four 16-column tiles of acc
      const int64_t tiles = std::min<int64_t>(4, (Dh - d0) / 16);
      float* a = acc + r0 * Dh + d0;
      _tile_loadd(0, a, astride);
      _tile_loadd(1, a + 16, astride);
      if (tiles > 2) {
        _tile_loadd(2, a + 32, astride);
        _tile_loadd(3, a + 48, astride);
      }
      for (int64_t c = 0; c < chunks; ++c) {
        const uint16_t* pa = psplit + r0 * kKeyTile + 32 * c;
        _tile_loadd(4, pa, pstride);
        _tile_loadd(5, pa + part_size, pstride);
        _tile_loadd(6, pa + 2 * part_size, pstride);
        const uint32_t* vs = vsplit + ((j0 + 32 * c) / 2) * Dh + d0;  // key pair row, column d0
        ATTEND_AMX_PV_STEP(0);
        ATTEND_AMX_PV_STEP(1);
        if (tiles > 2) {
          ATTEND_AMX_PV_STEP(2);
          ATTEND_AMX_PV_STEP(3);
        }
      }
      _tile_stored(0, a, astride);
      _tile_stored(1, a + 16, astride);
      if (tiles > 2) {
        _tile_stored(2, a + 32, astride);
        _tile_stored(3, a + 48, astride);
      }
    }
}

#undef ATTEND_AMX_SIX
#undef ATTEND_AMX_PV_STEP

}  // namespace attend::cpu::amx
