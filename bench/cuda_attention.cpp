// cuda_attention: the fused attention's time on a CUDA device for one shape, forward and
// forward+backward, f32 (the kernels of src/kernels/cuda/attention.cu).
// tools/bench_cuda_attention.py runs it shape by shape, interleaved with PyTorch's
// scaled_dot_product_attention on the same device, and prints the table of scripts/gpu-check.sh.
//
// usage: cuda_attention --n N [--batch B] [--heads H] [--head-dim D] [--causal 0|1] [--repeats R]
// Prints one line: n=<n> causal=<0|1> fwd_ms=<median> fwdbwd_ms=<median> fwd_tflops=<..>
// fwdbwd_tflops=<..>, the FLOP counts being 4 B H n^2 D forward and 2.5 times that backward
// (halved when causal), as FlashAttention's papers count them.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/rng.h"
#include "ops/ops.h"

namespace attend {
namespace {

int64_t flag(int argc, char** argv, const char* name, int64_t fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], name) == 0) {
      char* end = nullptr;
      const long long v = std::strtoll(argv[i + 1], &end, 10);
      if (!end || *end != '\0' || v < 0) {
        std::fprintf(stderr, "cuda_attention: %s expects a non-negative integer, got '%s'\n", name,
                     argv[i + 1]);
        std::exit(2);
      }
      return v;
    }
  return fallback;
}

Tensor rnd(const Shape& s, uint64_t seed, Device d) {
  Tensor t = Tensor::empty(s);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = philox_uniform(seed, 0, i) - 0.5f;
  return t.to(d);
}

/// Median wall time of f over `repeats` calls (after one warm-up), the device synchronised
/// after each.
template <typename F>
double median_ms(int64_t repeats, F&& f) {
  f();
  cuda_synchronize(0);
  std::vector<double> ms;
  for (int64_t r = 0; r < repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    cuda_synchronize(0);
    ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

int run(int argc, char** argv) {
  const int64_t n = flag(argc, argv, "--n", 1024), B = flag(argc, argv, "--batch", 1);
  const int64_t H = flag(argc, argv, "--heads", 16), D = flag(argc, argv, "--head-dim", 64);
  const bool causal = flag(argc, argv, "--causal", 0) != 0;
  const int64_t repeats = std::max<int64_t>(1, flag(argc, argv, "--repeats", 5));
  if (!built_with_cuda() || cuda_device_count() == 0) {
    std::fprintf(stderr, "cuda_attention: no CUDA device (built with CUDA: %s)\n",
                 built_with_cuda() ? "yes" : "no");
    return 1;
  }
  const Device gpu = Device::cuda(0);
  const Tensor q = rnd({B, H, n, D}, 1, gpu), k = rnd({B, H, n, D}, 2, gpu),
               v = rnd({B, H, n, D}, 3, gpu), dout = rnd({B, H, n, D}, 4, gpu);
  ops::AttentionMask mask;
  mask.causal = causal;
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  const double fwd = median_ms(repeats, [&] { (void)ops::attention(q, k, v, mask, scale); });
  const double fwdbwd = median_ms(repeats, [&] {
    const ops::AttentionOut o = ops::attention(q, k, v, mask, scale);
    (void)ops::attention_backward(dout, q, k, v, o, mask, scale);
  });
  const double flops = 4.0 * B * H * static_cast<double>(n) * n * D * (causal ? 0.5 : 1.0);
  std::printf("n=%lld causal=%d fwd_ms=%.3f fwdbwd_ms=%.3f fwd_tflops=%.3f fwdbwd_tflops=%.3f\n",
              static_cast<long long>(n), causal ? 1 : 0, fwd, fwdbwd, flops / fwd * 1e-9,
              3.5 * flops / fwdbwd * 1e-9);
  return 0;
}

}  // namespace
}  // namespace attend

int main(int argc, char** argv) { return attend::run(argc, argv); }
