// generate_throughput: generation speed of a decoder-only language model (decode::Generator:
// prompts read in one causal pass, then one token per sequence per step through the KV cache)
// on a randomly initialised model and random prompts of --prompt tokens. Greedy, and every
// sequence generates exactly --new tokens (no end-of-text stop), so that the work is fixed and
// equal for attend and the PyTorch peer (tools/generate_peer.py).
//
// usage: generate_throughput [--preset gpt-tiny|gpt2-small] [--vocab 50257] [--context 1024]
//                            [--batch 1] [--prompt 64] [--new 256] [--runs 3] [--warmup 1]
//                            [--threads N] [--precision fp32|bf16]
// Prints one JSON object: the median seconds of one generate() call over --runs (after
// --warmup), new tokens/s (batch * new / median), peak RSS. --new 1 times the first token:
// the prompt's pass and one projection.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "args.h"
#include "core/allocator.h"
#include "core/error.h"
#include "core/rng.h"
#include "core/thread_pool.h"
#include "decode/generator.h"
#include "peak.h"

namespace attend {
namespace {

using Clock = std::chrono::steady_clock;

int run(int argc, char** argv) {
  const char* usage =
      "usage: generate_throughput [--preset gpt-tiny|gpt2-small] [--vocab 50257]\n"
      "                           [--context 1024] [--batch 1] [--prompt 64] [--new 256]\n"
      "                           [--runs 3] [--warmup 1] [--threads N] [--precision fp32|bf16]\n"
      "  greedy generation of exactly --new tokens after random --prompt-token prompts with a\n"
      "  random model; prints one JSON object (median seconds per call, new tokens/s, peak RSS)\n";
  const bench::Args args(argc, argv, "generate_throughput", usage,
                         {"--preset", "--vocab", "--context", "--batch", "--prompt", "--new",
                          "--runs", "--warmup", "--threads", "--precision"});
  const std::string preset = args.str("--preset", "gpt-tiny");
  const int64_t V = args.integer("--vocab", 50257, 5), ctx = args.integer("--context", 1024, 2);
  const int64_t B = args.integer("--batch", 1, 1), P = args.integer("--prompt", 64, 1);
  const int64_t N = args.integer("--new", 256, 1), runs = args.integer("--runs", 3, 1);
  const int64_t warmup = args.integer("--warmup", 1);
  args.apply_threads();
  if (P + N - 1 > ctx) {
    std::fprintf(stderr, "generate_throughput: --prompt + --new - 1 must be <= --context %lld\n",
                 static_cast<long long>(ctx));
    return 2;
  }
  nn::TransformerConfig c = nn::TransformerConfig::preset(preset);
  ATTEND_CHECK(c.arch == nn::Arch::kDecoderOnly, "--preset: {} is not a decoder-only preset",
               preset);
  c.src_vocab = c.tgt_vocab = V;
  c.max_positions = ctx;
  c.dropout = 0;
  nn::DecoderOnly model(c, 1);
  model.set_training(false);
  const std::string precision = args.str("--precision", "fp32");
  if (precision == "bf16") {
    model.store_weights(DType::kBF16);  // bf16 weights, f32 arithmetic
  } else if (precision != "fp32") {
    std::fprintf(stderr, "generate_throughput: --precision must be fp32 or bf16, got '%s'\n",
                 precision.c_str());
    return 2;
  }
  const decode::Generator gen(model);
  decode::GenerateOptions o;
  o.temperature = 0;
  o.max_new = N;
  o.stop_at_eos = false;
  std::vector<double> times;
  for (int64_t r = 0; r < warmup + runs; ++r) {
    std::vector<std::vector<int32_t>> prompts(static_cast<size_t>(B));
    for (size_t i = 0; i < prompts.size(); ++i)
      for (int64_t t = 0; t < P; ++t)
        prompts[i].push_back(
            4 + static_cast<int32_t>(philox4x32(static_cast<uint64_t>(r), i,
                                                static_cast<uint64_t>(t))[0] %
                                     static_cast<uint32_t>(V - 4)));
    HeapScope heap;
    const auto t0 = Clock::now();
    const auto out = gen.generate(prompts, o);
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    for (const auto& g : out)
      ATTEND_CHECK(static_cast<int64_t>(g.tokens.size()) == N, "generated {} tokens, not {}",
                   g.tokens.size(), N);
    if (r >= warmup) times.push_back(s);
  }
  std::sort(times.begin(), times.end());
  const double med = times[times.size() / 2];
  std::printf("{\"impl\": \"attend\", \"precision\": \"%s\", \"preset\": \"%s\", \"vocab\": %lld, \"batch\": %lld, "
              "\"prompt\": %lld, \"new\": %lld, \"threads\": %d, \"params\": %lld, "
              "\"seconds\": %.5f, \"new_tokens_per_s\": %.1f, \"peak_rss_mib\": %.1f}\n",
              precision.c_str(), preset.c_str(), static_cast<long long>(V), static_cast<long long>(B),
              static_cast<long long>(P), static_cast<long long>(N), num_threads(),
              static_cast<long long>(model.num_parameters()), med,
              static_cast<double>(B * N) / med, bench::status_kib("VmHWM:") / 1024.0);
  return 0;
}

}  // namespace
}  // namespace attend

int main(int argc, char** argv) {
  try {
    return attend::run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "generate_throughput: %s\n", e.what());
    return 1;
  }
}
