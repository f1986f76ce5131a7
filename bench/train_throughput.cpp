// train_throughput: one full training step (forward, backward, Adam) of the encoder-decoder
// Transformer on synthetic full-length batches, through train::Trainer::step as `attend train`
// runs it (arena, tape, label-smoothed loss summed and scaled by the target tokens in the flat
// gradient buffer, Adam with the paper's betas).
//
// usage: train_throughput [--preset small|base|tiny|big] [--batch 64] [--src-len 32]
//                         [--tgt-len 32] [--vocab 8000] [--steps 10] [--warmup 3]
//                         [--dropout P] [--threads N]
// Prints one JSON object: target tokens/s and source+target tokens/s (median step), model
// FLOP utilisation against the GEMM peak measured in the same process (oneDNN/OpenBLAS SGEMM,
// 2048^3, best of 5), model FLOPs counted from the matrix products (training = 3 x forward;
// causal self-attention counts its visible half), and peak RSS.
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
#include "data/batcher.h"
#include "data/tokenizer.h"
#include "kernels/cpu/cpu.h"
#include "nn/transformer.h"
#include "ops/ops.h"
#include "train/trainer.h"
#include "args.h"
#include "peak.h"

namespace attend {
namespace {

using Clock = std::chrono::steady_clock;

using bench::status_kib;

double gemm_peak_gflops() {
  HeapScope heap;
  const int64_t n = 2048;
  const Tensor a = Tensor::full({n, n}, 0.5), b = Tensor::full({n, n}, 0.25);
  double best = 0;
  for (int r = 0; r < 5; ++r) {
    const auto t0 = Clock::now();
    const Tensor c = ops::matmul(a, b);
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    best = std::max(best, 2.0 * n * n * n / s / 1e9);
  }
  return best;
}

// Forward FLOPs of the matrix products for one batch (B sentences, S source, T target tokens).
double forward_flops(const nn::TransformerConfig& c, double B, double S, double T) {
  const double d = static_cast<double>(c.d_model), F = static_cast<double>(c.ffn);
  const double V = static_cast<double>(c.tgt_vocab);
  const double enc = c.encoder_layers * (B * S * (8 * d * d + 4 * d * F) + 4 * B * S * S * d);
  const double dec = c.decoder_layers * (B * T * (8 * d * d + 4 * d * F)      // self q,k,v,o + FFN
                                         + B * T * 4 * d * d + B * S * 4 * d * d  // cross q,o / k,v
                                         + 2 * B * T * T * d                     // causal half
                                         + 4 * B * T * S * d);                   // cross scores + PV
  return enc + dec + 2 * B * T * d * V;
}

int run(int argc, char** argv) {
  const char* usage =
      "usage: train_throughput [--preset small|base|tiny|big] [--batch 64] [--src-len 32]\n"
      "                        [--tgt-len 32] [--vocab 8000] [--steps 10] [--warmup 3]\n"
      "                        [--dropout P] [--threads N]\n"
      "  times full training steps on synthetic batches; prints one JSON object (tokens/s,\n"
      "  model FLOP utilisation against the measured GEMM peak, peak RSS)\n";
  const bench::Args args(argc, argv, "train_throughput", usage,
                         {"--preset", "--batch", "--src-len", "--tgt-len", "--vocab", "--steps",
                          "--warmup", "--dropout", "--threads"});
  const std::string preset = args.str("--preset", "small");
  const int64_t B = args.integer("--batch", 64, 1), S = args.integer("--src-len", 32, 1);
  const int64_t T = args.integer("--tgt-len", 32, 1), V = args.integer("--vocab", 8000, 5);
  const int64_t steps = args.integer("--steps", 10, 1), warmup = args.integer("--warmup", 3);
  args.apply_threads();
  nn::TransformerConfig c = nn::TransformerConfig::preset(preset);
  c.src_vocab = c.tgt_vocab = V;
  c.dropout = args.number("--dropout", c.dropout, 0.0, 0.99);
  const double peak = gemm_peak_gflops();

  nn::EncoderDecoder model(c, 1);
  // The step `attend train` runs: train::Trainer (flat gradient buffer, loss scaled by the target
  // tokens, global-norm clipping when set, Adam with the schedule's rate).
  train::TrainOptions options;
  options.schedule = train::ScheduleKind::kConstant;
  options.lr = 1e-4;
  options.warmup = 1;
  options.label_smoothing = 0.1;
  const data::Tokenizer no_vocabulary;  // only validation and checkpoints read it
  train::Trainer trainer(model, no_vocabulary, options);
  auto ids = [&](int64_t rows, int64_t cols, uint64_t stream) {
    std::vector<int32_t> v(static_cast<size_t>(rows * cols));
    for (size_t i = 0; i < v.size(); ++i)
      v[i] = 4 + static_cast<int32_t>(philox4x32(7, stream, i)[0] % static_cast<uint32_t>(V - 4));
    return Tensor::from_vector(v, {rows, cols});
  };
  HeapScope heap;
  data::Batch batch;
  batch.src = ids(B, S, 1);
  batch.tgt_in = ids(B, T, 2);
  batch.tgt_out = ids(B, T, 3).reshape({B * T});
  batch.src_lengths = Tensor::from_vector(std::vector<int32_t>(B, static_cast<int32_t>(S)), {B});
  batch.tgt_lengths = Tensor::from_vector(std::vector<int32_t>(B, static_cast<int32_t>(T)), {B});
  batch.indices.resize(static_cast<size_t>(B));
  batch.src_tokens = B * S;
  batch.tgt_tokens = B * T;
  std::vector<double> times;
  for (int64_t step = 0; step < warmup + steps; ++step) {
    const auto t0 = Clock::now();
    trainer.step({&batch});
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    if (step >= warmup) times.push_back(s);
  }
  std::sort(times.begin(), times.end());
  const double med = times[times.size() / 2];
  const double flops = 3.0 * forward_flops(c, static_cast<double>(B), static_cast<double>(S),
                                           static_cast<double>(T));
  std::printf("{\"impl\": \"attend\", \"preset\": \"%s\", \"batch\": %lld, \"src_len\": %lld, "
              "\"tgt_len\": %lld, \"vocab\": %lld, \"threads\": %d, \"params\": %lld, "
              "\"step_s\": %.5f, \"tgt_tokens_per_s\": %.1f, \"src_tgt_tokens_per_s\": %.1f, "
              "\"model_gflops_per_step\": %.3f, \"achieved_gflops\": %.2f, "
              "\"gemm_peak_gflops\": %.2f, \"mfu\": %.4f, \"peak_rss_mib\": %.1f, "
              "\"gemm\": \"%s\"}\n",
              preset.c_str(), static_cast<long long>(B), static_cast<long long>(S),
              static_cast<long long>(T), static_cast<long long>(V), num_threads(),
              static_cast<long long>(model.num_parameters()), med, B * T / med, B * (S + T) / med,
              flops / 1e9, flops / med / 1e9, peak, flops / med / 1e9 / peak,
              status_kib("VmHWM:") / 1024.0, cpu::gemm_library_name(cpu::gemm_library()));
  return 0;
}

}  // namespace
}  // namespace attend

int main(int argc, char** argv) {
  try {
    return attend::run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "train_throughput: %s\n", e.what());
    return 1;
  }
}
