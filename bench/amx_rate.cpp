// amx_rate: what the AMX tile unit (Intel AMX-BF16) of one core delivers here, to decide
// whether fp32-accurate attention products can run faster on it than on AVX-512 FMA.
//
// usage: amx_rate [--help]
// Prints, for one thread: the bf16 tile-product rate with the operands already in tile
// registers (TDPBF16PS into 4 independent accumulators), the same with the product chained
// into one accumulator, and with one 1 KiB tile load from L1 per product (the load-to-product
// ratio of a 2 x 2 register-blocked GEMM); then the fp32-equivalent rate when each fp32 product
// is split into the six bf16 part products it needs for fp32 accuracy (docs/attention.md), next
// to the measured AVX-512 FMA rate of the same core. Exits 0 with a message where the CPU or OS
// has no AMX.

// GCC 12's AVX-512 intrinsics start from _mm512_undefined_ps(), which its flow analysis reports
// as "may be used uninitialized" (GCC bug 105593): a false positive, silenced for this file.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>

namespace {

#define AMX_TARGET __attribute__((target("avx512f,amx-tile,amx-bf16"), noinline))

bool amx_usable() {
#if defined(__x86_64__) && defined(SYS_arch_prctl)
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  if (!((d >> 22) & 1) || !((d >> 24) & 1)) return false;  // AMX-BF16, AMX-TILE
  constexpr int kReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;  // Linux >= 5.16
  return syscall(SYS_arch_prctl, kReqXcompPerm, kXfeatureXtiledata) == 0;
#else
  return false;
#endif
}

double thread_seconds() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

alignas(64) uint16_t operand[4 * 16 * 32];  // four 16 x 32 bf16 tiles, 4 KiB (zeros)

AMX_TARGET void configure() {
  TileConfig cfg;
  for (int t = 0; t < 8; ++t) {
    cfg.colsb[t] = 64;
    cfg.rows[t] = 16;
  }
  __asm__ volatile("ldtilecfg %0" : : "m"(cfg));  // (GCC 12's _tile_loadconfig drops the sizes)
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  _tile_loadd(4, operand, 64);
  _tile_loadd(5, operand + 512, 64);
  _tile_loadd(6, operand + 1024, 64);
  _tile_loadd(7, operand + 1536, 64);
}

enum class Loop { kIndependent, kChained, kWithLoads };

// Seconds per tile product, best of 5 runs of n groups of four products: into four independent
// accumulators, chained into one, or into four with the four operand tiles loaded first.
template <Loop kLoop>
AMX_TARGET double per_product(long n) {
  double best = 1e30;
  for (int r = 0; r < 5; ++r) {
    const double t0 = thread_seconds();
    for (long i = 0; i < n; ++i) {
      if constexpr (kLoop == Loop::kWithLoads) {
        _tile_loadd(4, operand, 64);
        _tile_loadd(5, operand + 512, 64);
        _tile_loadd(6, operand + 1024, 64);
        _tile_loadd(7, operand + 1536, 64);
      }
      if constexpr (kLoop == Loop::kChained) {
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(0, 4, 7);
        _tile_dpbf16ps(0, 5, 6);
        _tile_dpbf16ps(0, 5, 7);
      } else {
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
      }
    }
    const double t = (thread_seconds() - t0) / (4.0 * static_cast<double>(n));
    best = t < best ? t : best;
  }
  return best;
}

AMX_TARGET void release() { _tile_release(); }

// fp32 GFLOP/s of one core: 12 independent AVX-512 FMA chains, best of 5.
__attribute__((target("avx512f"), noinline)) double fma_gflops(long n) {
  double best = 0;
  for (int r = 0; r < 5; ++r) {
    __m512 acc[12];
    for (int i = 0; i < 12; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i));
    const __m512 a = _mm512_set1_ps(0.999f), b = _mm512_set1_ps(1e-4f);
    const double t0 = thread_seconds();
    for (long i = 0; i < n; ++i)
      for (int j = 0; j < 12; ++j) acc[j] = _mm512_fmadd_ps(acc[j], a, b);
    const double t = thread_seconds() - t0;
    __m512 s = acc[0];
    for (int i = 1; i < 12; ++i) s = _mm512_add_ps(s, acc[i]);
    volatile float sink = _mm512_reduce_add_ps(s);
    (void)sink;
    const double g = 12.0 * 16 * 2 * static_cast<double>(n) / t * 1e-9;
    best = g > best ? g : best;
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  const char* usage = "usage: amx_rate [--help]\n  AMX tile-product rates of one core (no flags)\n";
  if (argc > 1) {
    const bool help = !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h");
    if (!help) std::fprintf(stderr, "amx_rate: unknown argument '%s'\n", argv[1]);
    std::fputs(usage, help ? stdout : stderr);
    return help ? 0 : 2;
  }
  if (!amx_usable()) {
    std::printf("amx_rate: this CPU or OS has no AMX-BF16; nothing to measure\n");
    return 0;
  }
  constexpr double kFlop = 2.0 * 16 * 16 * 32;  // one TDPBF16PS: 16 x 16 outputs, depth 32
  configure();
  const long n = 500000;
  const double ind = per_product<Loop::kIndependent>(n), chain = per_product<Loop::kChained>(n),
               load = per_product<Loop::kWithLoads>(n / 2);
  release();
  const double fma = fma_gflops(20000000);
  std::printf("one core, bf16 tile products (16x16x32, %.0f flop each):\n", kFlop);
  std::printf("  4 independent accumulators   %6.2f ns  %6.0f GFLOP/s\n", ind * 1e9, kFlop / ind * 1e-9);
  std::printf("  1 accumulator (chained)      %6.2f ns  %6.0f GFLOP/s\n", chain * 1e9, kFlop / chain * 1e-9);
  std::printf("  + 1 tile load per product    %6.2f ns  %6.0f GFLOP/s\n", load * 1e9, kFlop / load * 1e-9);
  std::printf("fp32-accurate (6 bf16 part products per fp32 product): %.0f GFLOP/s in registers, "
              "%.0f with the loads\n", kFlop / ind * 1e-9 / 6, kFlop / load * 1e-9 / 6);
  std::printf("AVX-512 fp32 FMA, same core: %.0f GFLOP/s\n", fma);
  return 0;
}
