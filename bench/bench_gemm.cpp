// GEMM on the Transformer's shapes, through OpenBLAS and oneDNN, as GFLOP/s and as a fraction of
// the measured FMA peak. Shapes: tokens x d_model x d_ff for the `base` (d 512, F 2048) and a
// small (d 256, F 1024) preset, the forward (x W^T: NT), input-gradient (dy W: NN) and
// weight-gradient (dy^T x: TN) products, and the output projection to a 10k vocabulary.
#include <benchmark/benchmark.h>
#include <oneapi/dnnl/dnnl.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <iterator>
#include <string>
#include <vector>

#include "core/rng.h"
#include "core/thread_pool.h"
#include "kernels/cpu/cpu.h"
#include "kernels/cpu/gemm_small.h"
#include "peak.h"

namespace attend {
namespace {

double g_peak = 0;

struct Shape3 {
  const char* name;
  bool ta, tb;
  int64_t M, N, K;
};

const std::vector<Shape3>& shapes() {
  static const std::vector<Shape3> s = {
      {"base_qkv_fwd", false, true, 2048, 1536, 512},   // x [T, D] W^T, fused q/k/v
      {"base_ffn1_fwd", false, true, 2048, 2048, 512},
      {"base_ffn2_fwd", false, true, 2048, 512, 2048},
      {"base_ffn2_dx", false, false, 2048, 2048, 512},  // dy [T, D] W [D, F]
      {"base_ffn1_dw", true, false, 2048, 512, 2048},   // dy^T [F, T] x [T, D]
      {"base_vocab_fwd", false, true, 2048, 10000, 512},
      {"small_ffn1_fwd", false, true, 1024, 1024, 256},
      {"small_ffn2_dw", true, false, 256, 1024, 1024},
      {"small_attn_out", false, true, 1024, 256, 256},
  };
  return s;
}

void fill(std::vector<float>& v, uint64_t seed) {
  for (size_t i = 0; i < v.size(); ++i) v[i] = philox_uniform(seed, 0, i) - 0.5f;
}

void BM_Gemm(benchmark::State& state) {
  const Shape3& s = shapes()[static_cast<size_t>(state.range(0))];
  const auto lib = state.range(1) ? cpu::GemmLibrary::kDnnl : cpu::GemmLibrary::kOpenBLAS;
  std::vector<float> a(s.M * s.K), b(s.K * s.N), c(s.M * s.N);
  fill(a, 1);
  fill(b, 2);
  cpu::set_gemm_library(lib);
  const int64_t lda = s.ta ? s.M : s.K, ldb = s.tb ? s.K : s.N;
  for (auto _ : state) {
    cpu::sgemm(s.ta, s.tb, s.M, s.N, s.K, 1.f, a.data(), lda, b.data(), ldb, 0.f, c.data(), s.N);
    benchmark::DoNotOptimize(c.data());
  }
  const double flops = 2.0 * s.M * s.N * s.K;
  state.counters["GFLOP/s"] = benchmark::Counter(flops * state.iterations() / 1e9,
                                                 benchmark::Counter::kIsRate);
  state.counters["peak"] = g_peak;
  state.SetLabel(std::string(s.name) + " " + cpu::gemm_library_name(lib));
}

// Decoding: a few rows (the batch's current positions, or its beams) times a weight matrix
// [N, K] of the `base` decoder, x W^T. The weights cycle through enough copies to exceed the
// caches, as a decoder step that reads all its layers does. impl 0: oneDNN's sgemm (packs W
// on every call); 1: sgemm_small_m (reads W in place); 2: oneDNN's matmul primitive; 3: int8
// (W quantized per row beforehand, x quantized per row in the timed loop, cpu::gemm_int8), the
// `translate --precision int8` product; 4: cpu::sgemm, what an f32 linear layer calls.
struct DecodeShape {
  const char* name;
  int64_t N, K;
};
const DecodeShape kDecodeShapes[] = {
    {"attn_512x512", 512, 512}, {"ffn1_2048x512", 2048, 512}, {"ffn2_512x2048", 512, 2048},
    {"vocab_32000x512", 32000, 512}};

void BM_DecodeGemm(benchmark::State& state) {
  const DecodeShape& s = kDecodeShapes[state.range(0)];
  const int64_t M = state.range(1);
  const int64_t impl = state.range(2);
  const int64_t copies = std::max<int64_t>(1, static_cast<int64_t>(200e6 / (4.0 * s.N * s.K)));
  std::vector<float> w(static_cast<size_t>(copies * s.N * s.K)), x(M * s.K), y(M * s.N);
  fill(w, 3);
  fill(x, 4);
  std::vector<int8_t> wq, xq;
  std::vector<float> ws, xs;
  if (impl == 3) {
    wq.resize(w.size());
    ws.resize(static_cast<size_t>(copies * s.N));
    cpu::quantize_rows(w.data(), wq.data(), ws.data(), copies * s.N, s.K);
    w = {};  // int8 copies stream a quarter of the bytes: keep as many as f32 would
    xq.resize(x.size());
    xs.resize(static_cast<size_t>(M));
  }
  int64_t i = 0;
  for (auto _ : state) {
    const int64_t at = i++ % copies;
    const float* wi = w.data() + at * s.N * s.K;
    if (impl == 3) {
      cpu::quantize_rows(x.data(), xq.data(), xs.data(), M, s.K);
      cpu::gemm_int8(M, s.N, s.K, xq.data(), xs.data(), wq.data() + at * s.N * s.K,
                     ws.data() + at * s.N, nullptr, y.data());
    } else if (impl == 4)
      cpu::sgemm(false, true, M, s.N, s.K, 1.f, x.data(), s.K, wi, s.K, 0.f, y.data(), s.N);
    else if (impl == 1)
      cpu::sgemm_small_m(M, s.N, s.K, 1.f, x.data(), s.K, wi, s.K, 0.f, y.data(), s.N);
    else if (impl == 2)
      cpu::sgemm_nt_matmul(M, s.N, s.K, x.data(), s.K, wi, s.K, y.data(), s.N);
    else
      dnnl_sgemm('N', 'T', M, s.N, s.K, 1.f, x.data(), s.K, wi, s.K, 0.f, y.data(), s.N);
    benchmark::DoNotOptimize(y.data());
  }
  const double flops = 2.0 * M * s.N * s.K;
  state.counters["GFLOP/s"] = benchmark::Counter(flops * state.iterations() / 1e9,
                                                 benchmark::Counter::kIsRate);
  state.counters["weight_GB/s"] = benchmark::Counter(
      (impl == 3 ? 1.0 : 4.0) * s.N * s.K * state.iterations() / 1e9, benchmark::Counter::kIsRate);
}

void register_all() {
  for (size_t i = 0; i < std::size(kDecodeShapes); ++i)
    for (int64_t M : {1, 4, 16, 32, 64, 128})
      for (int impl = 0; impl < 5; ++impl)
        benchmark::RegisterBenchmark(
            (std::string("decode/") + kDecodeShapes[i].name + "/M" + std::to_string(M) + "/" +
             std::array{"onednn", "small_m", "matmul", "int8", "sgemm"}[static_cast<size_t>(impl)])
                .c_str(),
            BM_DecodeGemm)
            ->Args({static_cast<int64_t>(i), M, impl})
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
  for (size_t i = 0; i < shapes().size(); ++i)
    for (int lib = 0; lib < 2; ++lib)
      benchmark::RegisterBenchmark(("gemm/" + std::string(shapes()[i].name) + "/" +
                                    cpu::gemm_library_name(lib ? cpu::GemmLibrary::kDnnl
                                                               : cpu::GemmLibrary::kOpenBLAS))
                                       .c_str(),
                                   BM_Gemm)
          ->Args({static_cast<int64_t>(i), lib})
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
}

}  // namespace
}  // namespace attend

int main(int argc, char** argv) {
  attend::g_peak = attend::bench::measured_fma_peak_gflops();
  std::printf("threads %d, measured fp32 FMA peak %.1f GFLOP/s\n", attend::num_threads(),
              attend::g_peak);
  attend::register_all();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
}
