// attention_scaling: time and peak extra memory of attention forward and forward+backward as the
// sequence grows, for the unfused reference, the fused kernel and local attention (window 256).
// 8 heads of width 64, batch 1, causal off, fp32, all pool threads (or --threads N).
//
// usage: attention_scaling [--max-n N] [--reference-max-n N] [--csv FILE] [--threads N]
// Prints a table; --csv writes one row per (n, impl) for tools/plot_attention_scaling.sh.
// Timing: outputs and saved tensors come from an arena reset after each call, as in a training
// step (no first-touch page faults for either implementation); implementations are interleaved.
// Memory, from one separate call per implementation with a fresh arena: "MiB" is the arena's
// peak, i.e. every tensor the op allocates (outputs, saved tensors, gradients, scratch);
// "RSS MiB" is the peak resident size during the call (Linux VmHWM, reset through
// /proc/self/clear_refs) minus the resident size before it, which also counts the kernels'
// internal buffers but misses memory the C allocator reuses from earlier calls.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "core/allocator.h"
#include "core/rng.h"
#include "core/thread_pool.h"
#include "kernels/cpu/cpu.h"
#include "ops/ops.h"
#include "args.h"
#include "peak.h"

namespace attend {
namespace {

constexpr int64_t kHeads = 8, kDh = 64, kWindow = 256;

using bench::status_kib;
void reset_peak() {
  std::ofstream f("/proc/self/clear_refs");
  f << "5";
}

Tensor rnd(const Shape& s, uint64_t seed) {
  Tensor t = Tensor::empty(s);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = philox_uniform(seed, 0, i) - 0.5f;
  return t;
}

struct Measure {
  double seconds = 0;
  double extra_mib = 0;  // peak resident growth during the call
};

/// One call of f: wall time and peak resident-memory growth.
template <typename F>
Measure measure(F&& f) {
  const long before = status_kib("VmRSS:");
  reset_peak();
  const auto t0 = std::chrono::steady_clock::now();
  f();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return {seconds, (status_kib("VmHWM:") - before) / 1024.0};
}

double gemm_rate_gflops() {
  const int64_t M = 2048, N = 2048, K = 512;
  std::vector<float> a(M * K, 0.5f), b(K * N, 0.25f), c(M * N);
  double best = 0;
  for (int r = 0; r < 5; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    cpu::sgemm(false, true, M, N, K, 1.f, a.data(), K, b.data(), K, 0.f, c.data(), N);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, 2.0 * M * N * K / s / 1e9);
  }
  return best;
}

}  // namespace
}  // namespace attend

int main(int argc, char** argv) {
  using namespace attend;
  const char* usage =
      "usage: attention_scaling [--max-n N] [--reference-max-n N] [--csv FILE] [--threads N]\n"
      "  times the reference, fused and local attention for n = 256, 512, ... up to --max-n\n"
      "  (default 32768); the reference only up to --reference-max-n (default 8192)\n";
  const bench::Args args(argc, argv, "attention_scaling", usage,
                         {"--max-n", "--reference-max-n", "--csv", "--threads"});
  const int64_t max_n = args.integer("--max-n", 32768, 256);
  const int64_t ref_max_n = args.integer("--reference-max-n", 8192, 0);
  const std::string csv_path = args.str("--csv", "");
  args.apply_threads();
  const double peak = bench::measured_fma_peak_gflops();
  const double gemm = gemm_rate_gflops();
  std::printf("attention_scaling: batch 1, %lld heads x %lld, fp32, %d threads\n",
              static_cast<long long>(kHeads), static_cast<long long>(kDh), num_threads());
  std::printf("measured FMA peak %.0f GFLOP/s, sgemm 2048x2048x512 %.0f GFLOP/s\n\n", peak, gemm);
  std::printf("%7s %-10s %11s %11s %12s %12s %12s %9s %9s\n", "n", "impl", "fwd ms",
              "fwd+bwd ms", "fwd MiB", "fwd+bwd MiB", "f+b RSS MiB", "fwd GF/s", "f+b GF/s");
  std::FILE* csv = csv_path.empty() ? nullptr : std::fopen(csv_path.c_str(), "w");
  if (csv)
    std::fprintf(csv,
                 "n,impl,fwd_ms,fwdbwd_ms,fwd_mib,fwdbwd_mib,fwdbwd_rss_mib,fwd_gflops,fwdbwd_gflops\n");
  const double scale = 1.0 / std::sqrt(static_cast<double>(kDh));
  for (int64_t n = 256; n <= max_n; n *= 2) {
    const Tensor q = rnd({1, kHeads, n, kDh}, 1), k = rnd({1, kHeads, n, kDh}, 2),
                 v = rnd({1, kHeads, n, kDh}, 3), dout = rnd({1, kHeads, n, kDh}, 4);
    const double full_flops = 4.0 * kHeads * static_cast<double>(n) * n * kDh;
    // Visible keys per query under the window (both sides, clipped at the ends).
    const double w = static_cast<double>(std::min<int64_t>(kWindow, n - 1));
    const double local_pairs = static_cast<double>(n) * (2 * w + 1) - w * (w + 1);
    const double local_flops = 4.0 * kHeads * local_pairs * kDh;
    const int reps = n <= 1024 ? 11 : (n <= 4096 ? 5 : (n <= 8192 ? 3 : 1));
    const char* impls[] = {"reference", "fused", "local"};
    std::vector<double> t_fwd[3], t_both[3];
    double m_fwd[3] = {0, 0, 0}, m_both[3] = {0, 0, 0}, rss_both[3] = {0, 0, 0};
    auto mask_of = [&](int impl) {
      ops::AttentionMask m;
      if (impl == 2) {
        m.local = true;
        m.window = kWindow;
      }
      return m;
    };
    auto forward = [&](int impl) {
      if (impl == 0) ops::attention_reference(q, k, v, mask_of(impl), scale);
      else ops::attention(q, k, v, mask_of(impl), scale);
    };
    auto forward_backward = [&](int impl) {
      const ops::AttentionMask m = mask_of(impl);
      if (impl == 0) {
        const ops::ReferenceAttentionOut o = ops::attention_reference(q, k, v, m, scale);
        ops::attention_reference_backward(dout, q, k, v, o.probs, scale);
      } else {
        const ops::AttentionOut o = ops::attention(q, k, v, m, scale);
        ops::attention_backward(dout, q, k, v, o, m, scale);
      }
    };
    // Peak memory: one call each with a fresh arena (released afterwards).
    for (int impl = 0; impl < 3; ++impl) {
      if (impl == 0 && n > ref_max_n) continue;
      {
        Arena arena(4096);
        {
          ArenaScope scope(&arena);
          forward(impl);
        }
        m_fwd[impl] = arena.peak_bytes() / 1048576.0;
      }
      rss_both[impl] = measure([&] {
        Arena arena(4096);
        {
          ArenaScope scope(&arena);
          forward_backward(impl);
        }
        m_both[impl] = arena.peak_bytes() / 1048576.0;
      }).extra_mib;
    }
    // Time: interleaved repetitions, each implementation with its own warm arena.
    Arena arenas[3];
    for (int r = 0; r < reps; ++r)
      for (int impl = 0; impl < 3; ++impl) {
        if (impl == 0 && n > ref_max_n) continue;
        t_fwd[impl].push_back(measure([&] {
          ArenaScope scope(&arenas[impl]);
          forward(impl);
        }).seconds);
        arenas[impl].reset();
        t_both[impl].push_back(measure([&] {
          ArenaScope scope(&arenas[impl]);
          forward_backward(impl);
        }).seconds);
        arenas[impl].reset();
      }
    for (int impl = 0; impl < 3; ++impl) {
      if (impl == 0 && n > ref_max_n) {
        std::printf("%7lld %-10s %11s   (skipped: the n x n scores need %.1f GiB)\n",
                    static_cast<long long>(n), impls[impl], "-",
                    2.0 * kHeads * n * n * 4 / 1073741824.0);
        continue;
      }
      auto median = [](std::vector<double> x) {
        std::sort(x.begin(), x.end());
        return x[x.size() / 2];
      };
      const double f = median(t_fwd[impl]), b = median(t_both[impl]);
      const double flops = impl == 2 ? local_flops : full_flops;
      const double gf_fwd = flops / f / 1e9, gf_both = 3.5 * flops / b / 1e9;
      std::printf("%7lld %-10s %11.2f %11.2f %12.1f %12.1f %12.1f %9.1f %9.1f\n",
                  static_cast<long long>(n), impls[impl], f * 1e3, b * 1e3, m_fwd[impl],
                  m_both[impl], rss_both[impl], gf_fwd, gf_both);
      std::fflush(stdout);
      if (csv)
        std::fprintf(csv, "%lld,%s,%.3f,%.3f,%.2f,%.2f,%.2f,%.2f,%.2f\n",
                     static_cast<long long>(n), impls[impl], f * 1e3, b * 1e3, m_fwd[impl],
                     m_both[impl], rss_both[impl], gf_fwd, gf_both);
    }
  }
  if (csv) std::fclose(csv);
  std::printf("\nMiB: arena peak (all tensors the op allocates); RSS MiB: peak resident growth.\n");
  std::printf("GF/s: useful flops (4 n^2 H Dh forward, 3.5x that forward+backward; local counts "
              "only the visible pairs) per second.\n");
  return 0;
}
