// FMA peak: a register-only loop of independent FMAs in the widest ISA the CPU has (AVX-512 or
// AVX2), run on every pool thread; best of eight runs (the machine is shared).
#include "peak.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <immintrin.h>

#include "core/thread_pool.h"

namespace attend::bench {
namespace {

constexpr long kIters = 40'000'000;

// 12 independent accumulator chains hide the FMA latency (4 cycles) on two FMA ports.
__attribute__((target("avx512f"), noinline)) double fma_avx512(long iters) {
  __m512 acc[12];
  for (int c = 0; c < 12; ++c) acc[c] = _mm512_set1_ps(0.001f * c);
  const __m512 m = _mm512_set1_ps(0.9999999f), a = _mm512_set1_ps(1e-7f);
  for (long i = 0; i < iters; ++i)
    for (int c = 0; c < 12; ++c) acc[c] = _mm512_fmadd_ps(acc[c], m, a);
  alignas(64) float out[16];
  float s = 0;
  for (int c = 0; c < 12; ++c) {
    _mm512_store_ps(out, acc[c]);
    for (float v : out) s += v;
  }
  return s;
}

__attribute__((target("avx2,fma"), noinline)) double fma_avx2(long iters) {
  __m256 acc[12];
  for (int c = 0; c < 12; ++c) acc[c] = _mm256_set1_ps(0.001f * c);
  const __m256 m = _mm256_set1_ps(0.9999999f), a = _mm256_set1_ps(1e-7f);
  for (long i = 0; i < iters; ++i)
    for (int c = 0; c < 12; ++c) acc[c] = _mm256_fmadd_ps(acc[c], m, a);
  alignas(32) float out[8];
  float s = 0;
  for (int c = 0; c < 12; ++c) {
    _mm256_store_ps(out, acc[c]);
    for (float v : out) s += v;
  }
  return s;
}

}  // namespace

double measured_fma_peak_gflops() {
  const bool avx512 = __builtin_cpu_supports("avx512f");
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (!avx512 && !avx2) return 0.0;
  const double flops_per_iter = 2.0 * 12 * (avx512 ? 16 : 8);
  const int threads = num_threads();
  double best = 0;
  for (int rep = 0; rep < 8; ++rep) {
    std::atomic<double> sink{0};
    const auto t0 = std::chrono::steady_clock::now();
    parallel_for(threads, 1, [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) sink = sink + (avx512 ? fma_avx512(kIters) : fma_avx2(kIters));
    });
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, flops_per_iter * kIters * threads / s / 1e9);
  }
  return best;
}

}  // namespace attend::bench
