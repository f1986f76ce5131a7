// Softmax, layer norm and (reference) attention forward/backward: throughput in GB/s of
// compulsory traffic for the memory-bound ops, GFLOP/s for attention. Outputs come from an arena
// reset every iteration, as in a training step (no page faults from fresh allocations).
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdio>

#include "core/allocator.h"
#include "core/rng.h"
#include "core/thread_pool.h"
#include "ops/ops.h"
#include "peak.h"

namespace attend {
namespace {

Tensor rnd(const Shape& s, uint64_t seed) {
  Tensor t = Tensor::empty(s);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = philox_uniform(seed, 0, i) - 0.5f;
  return t;
}

// Scores [B, H, T, T] for B*T = 2048 tokens, 8 heads.
void BM_Softmax(benchmark::State& state) {
  const int64_t T = state.range(0), B = 2048 / T, H = 8;
  const Tensor x = rnd({B, H, T, T}, 1), dy = rnd({B, H, T, T}, 2);
  const bool backward = state.range(1);
  ops::AttentionMask m;
  m.causal = true;
  Tensor y = ops::softmax(x, m);
  Arena arena;
  for (auto _ : state) {
    ArenaScope scope(&arena);
    if (backward) benchmark::DoNotOptimize(ops::softmax_backward(y, dy).raw_data());
    else benchmark::DoNotOptimize(ops::softmax(x, m).raw_data());
    arena.reset();
  }
  const double bytes = (backward ? 3.0 : 2.0) * x.nbytes();
  state.counters["GB/s"] = benchmark::Counter(bytes * state.iterations() / 1e9,
                                              benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Softmax)->ArgsProduct({{32, 128}, {0, 1}})->ArgNames({"T", "bwd"})
    ->Unit(benchmark::kMicrosecond)->UseRealTime();

// A beam search step's candidates from logits [rows, 32000]: fused=0 runs logsumexp and top_k
// (two ops, three reads of the logits), fused=1 ops::top_k_logsumexp (one read); 2 and 3 time
// logsumexp and top_k alone (the parts of 0). k = 8 (beam 4).
void BM_StepTopK(benchmark::State& state) {
  const int64_t rows = state.range(0), V = 32000, k = 8;
  const int64_t fused = state.range(1);
  const Tensor x = rnd({rows, V}, 3);
  Arena arena;
  for (auto _ : state) {
    ArenaScope scope(&arena);
    if (fused == 1) {
      benchmark::DoNotOptimize(ops::top_k_logsumexp(x, k, {0, 1, 2}).lse.raw_data());
    } else if (fused == 2) {
      benchmark::DoNotOptimize(ops::logsumexp(x).raw_data());
    } else if (fused == 3) {
      benchmark::DoNotOptimize(ops::top_k(x, k, {0, 1, 2}).values.raw_data());
    } else {
      benchmark::DoNotOptimize(ops::logsumexp(x).raw_data());
      benchmark::DoNotOptimize(ops::top_k(x, k, {0, 1, 2}).values.raw_data());
    }
    arena.reset();
  }
  state.counters["GB/s"] = benchmark::Counter(
      static_cast<double>(x.nbytes()) * state.iterations() / 1e9, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_StepTopK)
    ->ArgsProduct({{4, 128}, {0, 1, 2, 3}})
    ->ArgNames({"rows", "fused"})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

// Layer norm (with fused residual) over 2048 tokens of width D.
void BM_LayerNorm(benchmark::State& state) {
  const int64_t D = state.range(0), R = 2048;
  const Tensor x = rnd({R, D}, 3), r = rnd({R, D}, 4), g = rnd({D}, 5), b = rnd({D}, 6);
  const Tensor dy = rnd({R, D}, 7);
  const bool backward = state.range(1);
  const ops::LayerNormOut saved = ops::layer_norm(x, r, g, b);
  Arena arena;
  for (auto _ : state) {
    ArenaScope scope(&arena);
    if (backward) benchmark::DoNotOptimize(ops::layer_norm_backward(dy, saved, g).dx.raw_data());
    else benchmark::DoNotOptimize(ops::layer_norm(x, r, g, b).y.raw_data());
    arena.reset();
  }
  const double bytes = (backward ? 3.0 : 4.0) * x.nbytes();  // fwd: x, r in; y, sum out
  state.counters["GB/s"] = benchmark::Counter(bytes * state.iterations() / 1e9,
                                              benchmark::Counter::kIsRate);
}
BENCHMARK(BM_LayerNorm)->ArgsProduct({{512, 1024}, {0, 1}})->ArgNames({"D", "bwd"})
    ->Unit(benchmark::kMicrosecond)->UseRealTime();

// Attention, 8 heads of width 64, batch 1, sequence length T: the reference (unfused, keeps the
// probabilities) or the fused kernel (the default); forward, or backward alone from a saved
// forward. GFLOP/s counts useful work only (not the fused backward's recomputed scores).
void BM_Attention(benchmark::State& state) {
  const int64_t T = state.range(0), H = 8, Dh = 64;
  const Tensor q = rnd({1, H, T, Dh}, 8), k = rnd({1, H, T, Dh}, 9), v = rnd({1, H, T, Dh}, 10);
  const Tensor dout = rnd({1, H, T, Dh}, 11);
  const bool backward = state.range(1), fused = state.range(2);
  const double scale = 1.0 / std::sqrt(static_cast<double>(Dh));
  const ops::ReferenceAttentionOut ref = ops::attention_reference(q, k, v, {}, scale);
  const ops::AttentionOut out = ops::attention(q, k, v, {}, scale);
  Arena arena;
  const auto call = [&]() -> Tensor {
    if (backward)
      return fused ? ops::attention_backward(dout, q, k, v, out, {}, scale).dq
                   : ops::attention_reference_backward(dout, q, k, v, ref.probs, scale).dq;
    return fused ? ops::attention(q, k, v, {}, scale).out
                 : ops::attention_reference(q, k, v, {}, scale).out;
  };
  for (auto _ : state) {
    {
      ArenaScope scope(&arena);
      benchmark::DoNotOptimize(call().raw_data());
    }
    arena.reset();
  }
  const double flops = (backward ? 8.0 : 4.0) * H * T * T * Dh;
  state.counters["GFLOP/s"] = benchmark::Counter(flops * state.iterations() / 1e9,
                                                 benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Attention)->ArgsProduct({{256, 512, 1024, 4096}, {0, 1}, {0, 1}})
    ->ArgNames({"T", "bwd", "fused"})->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace attend

int main(int argc, char** argv) {
  std::printf("threads %d, measured fp32 FMA peak %.1f GFLOP/s\n", attend::num_threads(),
              attend::bench::measured_fma_peak_gflops());
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
}
