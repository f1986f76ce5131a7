// attention_shapes: one attention configuration, fused kernel, timed the way a training step
// calls it -- forward, and forward + backward -- for tools/bench_attention.py, which runs the
// PyTorch peer (tools/attention_peer.py: matmul, masked softmax, matmul) on the same shapes.
//
// usage: attention_shapes [--n 1024] [--heads 8] [--dh 64] [--batch 1] [--causal 0|1]
//                         [--pad 0|1] [--reps 5] [--threads N]
// --pad 1 gives every other batch entry keys only up to 3/4 of n (a padding mask; needs
// --batch >= 2 to matter). Prints one JSON object: median milliseconds of each, and GFLOP/s of
// useful work (4 n^2 H Dh per entry, halved under causality; x3.5 forward + backward).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "core/allocator.h"
#include "core/rng.h"
#include "core/thread_pool.h"
#include "ops/ops.h"
#include "args.h"

namespace attend {
namespace {

Tensor rnd(const Shape& s, uint64_t seed) {
  Tensor t = Tensor::empty(s);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = philox_uniform(seed, 0, i) - 0.5f;
  return t;
}

template <typename F>
double seconds(F&& f) {
  const auto t0 = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double median(std::vector<double> x) {
  std::sort(x.begin(), x.end());
  return x[x.size() / 2];
}

}  // namespace
}  // namespace attend

int main(int argc, char** argv) {
  using namespace attend;
  const char* usage =
      "usage: attention_shapes [--n 1024] [--heads 8] [--dh 64] [--batch 1] [--causal 0|1]\n"
      "                        [--pad 0|1] [--reps 5] [--threads N]\n"
      "  times the fused attention forward and forward+backward on one shape; prints JSON\n";
  const bench::Args args(argc, argv, "attention_shapes", usage,
                         {"--n", "--heads", "--dh", "--batch", "--causal", "--pad", "--reps",
                          "--threads"});
  const int64_t n = args.integer("--n", 1024, 1), H = args.integer("--heads", 8, 1),
                Dh = args.integer("--dh", 64, 1), B = args.integer("--batch", 1, 1);
  const bool causal = args.integer("--causal", 0, 0, 1) == 1;
  const bool pad = args.integer("--pad", 0, 0, 1) == 1;
  const int64_t reps = args.integer("--reps", 5, 1);
  args.apply_threads();
  const Tensor q = rnd({B, H, n, Dh}, 1), k = rnd({B, H, n, Dh}, 2), v = rnd({B, H, n, Dh}, 3),
               dout = rnd({B, H, n, Dh}, 4);
  ops::AttentionMask mask;
  mask.causal = causal;
  if (pad) {
    std::vector<int32_t> lengths(static_cast<size_t>(B));
    for (int64_t b = 0; b < B; ++b)
      lengths[static_cast<size_t>(b)] = static_cast<int32_t>(b % 2 == 1 ? n * 3 / 4 : n);
    mask.key_lengths = Tensor::from_vector(lengths, {B});
  }
  const double scale = 1.0 / std::sqrt(static_cast<double>(Dh));
  Arena arena;
  std::vector<double> fwd, both;
  for (int64_t r = 0; r <= reps; ++r) {  // the first round warms the arena and is not counted
    const double f = seconds([&] {
      ArenaScope scope(&arena);
      ops::attention(q, k, v, mask, scale);
    });
    arena.reset();
    const double fb = seconds([&] {
      ArenaScope scope(&arena);
      const ops::AttentionOut o = ops::attention(q, k, v, mask, scale);
      ops::attention_backward(dout, q, k, v, o, mask, scale);
    });
    arena.reset();
    if (r > 0) fwd.push_back(f), both.push_back(fb);
  }
  const double flops =
      4.0 * static_cast<double>(B * H) * static_cast<double>(n) * n * Dh * (causal ? 0.5 : 1.0);
  const double f = median(fwd), fb = median(both);
  std::printf(
      "{\"impl\": \"attend\", \"n\": %lld, \"heads\": %lld, \"dh\": %lld, \"batch\": %lld, "
      "\"causal\": %d, \"pad\": %d, \"threads\": %d, \"fwd_ms\": %.3f, \"fwdbwd_ms\": %.3f, "
      "\"fwd_gflops\": %.2f, \"fwdbwd_gflops\": %.2f, \"kernel\": \"%s\"}\n",
      static_cast<long long>(n), static_cast<long long>(H), static_cast<long long>(Dh),
      static_cast<long long>(B), causal ? 1 : 0, pad ? 1 : 0, num_threads(), f * 1e3, fb * 1e3,
      flops / f / 1e9, 3.5 * flops / fb / 1e9, ops::attention_kernel().c_str());
  return 0;
}
