// train_throughput: one full training step (forward, backward, Adam) of the encoder-decoder
// Transformer on synthetic full-length batches, through train::Trainer::step as `attend train`
// runs it (arena, tape, label-smoothed loss summed and scaled by the target tokens in the flat
// gradient buffer, Adam with the paper's betas). A decoder-only preset (gpt-tiny, gpt2-small)
// trains the language model instead on --batch windows of --tgt-len tokens (next-token loss,
// no label smoothing; --src-len unused).
//
// usage: train_throughput [--preset small|base|tiny|big|gpt-tiny|gpt2-small] [--batch 64]
//                         [--src-len 32] [--tgt-len 32] [--vocab 8000] [--steps 10] [--warmup 3]
//                         [--dropout P] [--threads N] [--bucket-mb MB] [--precision fp32|bf16]
//                         [--profile 0|1]
// --profile 1 then runs --steps more steps with every op call timed and prints each op's share
// of a step on stderr (core/profile.h).
// --precision bf16 trains as train.precision bf16 does (bf16 products, f32 sums) and measures
// the GEMM peak with bf16 products too, so that MFU is against the rate of the unit it used.
// Under `mpirun -np N` it trains data parallel (one batch per rank, gradients summed over the
// ranks in buckets) and rank 0 reports the global throughput, with the seconds per step spent
// all-reducing and the part of them backward did not hide (comm_wait_s_per_step).
// Prints one JSON object: target tokens/s and source+target tokens/s (median step), model
// FLOP utilisation against the GEMM peak measured in the same process (oneDNN/OpenBLAS SGEMM,
// 2048^3, best of 5), model FLOPs counted from the matrix products (training = 3 x forward;
// causal self-attention counts its visible half), and peak RSS.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "args.h"
#include "core/allocator.h"
#include "core/context.h"
#include "core/rng.h"
#include "core/thread_pool.h"
#include "data/batcher.h"
#include "data/tokenizer.h"
#include "dist/communicator.h"
#include "kernels/cpu/cpu.h"
#include "nn/transformer.h"
#include "op_profile.h"
#include "ops/ops.h"
#include "peak.h"
#include "train/trainer.h"

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
  const double dec = c.decoder_layers * (B * T * (8 * d * d + 4 * d * F)  // self q,k,v,o + FFN
                                         + B * T * 4 * d * d + B * S * 4 * d * d  // cross q,o / k,v
                                         + 2 * B * T * T * d                      // causal half
                                         + 4 * B * T * S * d);  // cross scores + PV
  return enc + dec + 2 * B * T * d * V;
}

// The same for a decoder-only model on B windows of T tokens (no encoder, no cross-attention).
double lm_forward_flops(const nn::TransformerConfig& c, double B, double T) {
  const double d = static_cast<double>(c.d_model), F = static_cast<double>(c.ffn);
  const double V = static_cast<double>(c.tgt_vocab);
  return c.decoder_layers * (B * T * (8 * d * d + 4 * d * F) + 2 * B * T * T * d) +
         2 * B * T * d * V;
}

int run(int argc, char** argv) {
  const char* usage =
      "usage: train_throughput [--preset small|base|tiny|big|gpt-tiny|gpt2-small] [--batch 64]\n"
      "                        [--src-len 32]\n"
      "                        [--tgt-len 32] [--vocab 8000] [--steps 10] [--warmup 3]\n"
      "                        [--dropout P] [--threads N] [--bucket-mb MB]\n"
      "                        [--precision fp32|bf16] [--profile 0|1]\n"
      "  under mpirun -np N: data parallel, one batch per rank, global tokens/s from rank 0\n"
      "  times full training steps on synthetic batches; prints one JSON object (tokens/s,\n"
      "  model FLOP utilisation against the measured GEMM peak, peak RSS)\n";
  const bench::Args args(
      argc, argv, "train_throughput", usage,
      {"--preset", "--batch", "--src-len", "--tgt-len", "--vocab", "--steps", "--warmup",
       "--dropout", "--threads", "--bucket-mb", "--precision", "--profile"});
  const std::string preset = args.str("--preset", "small");
  const int64_t B = args.integer("--batch", 64, 1), S = args.integer("--src-len", 32, 1);
  const int64_t T = args.integer("--tgt-len", 32, 1), V = args.integer("--vocab", 8000, 5);
  const int64_t steps = args.integer("--steps", 10, 1), warmup = args.integer("--warmup", 3);
  args.apply_threads();
  nn::TransformerConfig c = nn::TransformerConfig::preset(preset);
  c.src_vocab = c.tgt_vocab = V;
  c.dropout = args.number("--dropout", c.dropout, 0.0, 0.99);
  const std::string precision = args.str("--precision", "fp32");
  if (precision != "fp32" && precision != "bf16")
    throw std::runtime_error("--precision: expected fp32 or bf16, got '" + precision + "'");
  const DType products = precision == "bf16" ? DType::kBF16 : DType::kF32;
  double peak = 0;
  {
    ProductsScope scope(products);
    peak = gemm_peak_gflops();
  }

  const bool lm = c.arch == nn::Arch::kDecoderOnly;
  std::unique_ptr<nn::Model> owned;
  if (lm)
    owned = std::make_unique<nn::DecoderOnly>(c, 1);
  else
    owned = std::make_unique<nn::EncoderDecoder>(c, 1);
  nn::Model& model = *owned;
  // The step `attend train` runs: train::Trainer (flat gradient buffer, loss scaled by the target
  // tokens, global-norm clipping when set, Adam with the schedule's rate).
  train::TrainOptions options;
  options.schedule = train::ScheduleKind::kConstant;
  options.lr = 1e-4;
  options.warmup = 1;
  options.label_smoothing = lm ? 0.0 : 0.1;
  options.bucket_mb = args.number("--bucket-mb", 25.0, 1e-3, 1e6);
  options.precision = products;
  const data::Tokenizer no_vocabulary;  // only validation and checkpoints read it
  // Under mpirun every rank trains on its own batch and the gradients are summed (data
  // parallel); rank 0 reports the global throughput.
  dist::Communicator& comm = dist::world();
  train::Trainer trainer(model, no_vocabulary, options, &comm);
  const uint64_t r = static_cast<uint64_t>(comm.rank()) * 3;
  auto ids = [&](int64_t rows, int64_t cols, uint64_t stream) {
    std::vector<int32_t> v(static_cast<size_t>(rows * cols));
    for (size_t i = 0; i < v.size(); ++i)
      v[i] = 4 + static_cast<int32_t>(philox4x32(7, stream, i)[0] % static_cast<uint32_t>(V - 4));
    return Tensor::from_vector(v, {rows, cols});
  };
  HeapScope heap;
  data::Batch batch;
  if (!lm) batch.src = ids(B, S, 1 + r);
  batch.tgt_in = ids(B, T, 2 + r);
  batch.tgt_out = ids(B, T, 3 + r).reshape({B * T});
  if (!lm)
    batch.src_lengths = Tensor::from_vector(std::vector<int32_t>(B, static_cast<int32_t>(S)), {B});
  batch.tgt_lengths = Tensor::from_vector(std::vector<int32_t>(B, static_cast<int32_t>(T)), {B});
  batch.indices.resize(static_cast<size_t>(B));
  batch.src_tokens = lm ? 0 : B * S;
  batch.tgt_tokens = B * T;
  std::vector<double> times;
  double comm0 = 0, wait0 = 0;
  for (int64_t step = 0; step < warmup + steps; ++step) {
    if (step == warmup && trainer.reducer()) {
      comm0 = trainer.reducer()->seconds_communicating();
      wait0 = trainer.reducer()->seconds_waiting();
    }
    const auto t0 = Clock::now();
    trainer.step({&batch});
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    if (step >= warmup) times.push_back(s);
  }
  if (args.integer("--profile", 0, 0, 1) == 1)
    bench::print_op_profile(steps, "step", [&] { trainer.step({&batch}); });
  const double ranks = comm.size();
  // Per timed step: seconds all-reducing, and seconds backward's end waited for them.
  const double comm_s =
      trainer.reducer() ? (trainer.reducer()->seconds_communicating() - comm0) / steps : 0.0;
  const double wait_s =
      trainer.reducer() ? (trainer.reducer()->seconds_waiting() - wait0) / steps : 0.0;
  if (comm.rank() != 0) return 0;
  std::sort(times.begin(), times.end());
  const double med = times[times.size() / 2];
  const double flops =
      3.0 * (lm ? lm_forward_flops(c, static_cast<double>(B), static_cast<double>(T))
                : forward_flops(c, static_cast<double>(B), static_cast<double>(S),
                                static_cast<double>(T)));
  std::printf(
      "{\"impl\": \"attend\", \"preset\": \"%s\", \"batch\": %lld, \"src_len\": %lld, "
      "\"tgt_len\": %lld, \"vocab\": %lld, \"threads\": %d, \"precision\": \"%s\", "
      "\"params\": %lld, \"step_s\": %.5f, \"tgt_tokens_per_s\": %.1f, \"src_tgt_tokens_per_s\": "
      "%.1f, "
      "\"model_gflops_per_step\": %.3f, \"achieved_gflops\": %.2f, "
      "\"gemm_peak_gflops\": %.2f, \"mfu\": %.4f, \"peak_rss_mib\": %.1f, "
      "\"gemm\": \"%s\", \"ranks\": %d, \"comm_s_per_step\": %.5f, "
      "\"comm_wait_s_per_step\": %.5f}\n",
      preset.c_str(), static_cast<long long>(B), static_cast<long long>(lm ? 0 : S),
      static_cast<long long>(T), static_cast<long long>(V), num_threads(), precision.c_str(),
      static_cast<long long>(model.num_parameters()), med, ranks * B * T / med,
      ranks * B * ((lm ? 0 : S) + T) / med, flops / 1e9, ranks * flops / med / 1e9, peak,
      ranks * flops / med / 1e9 / peak, status_kib("VmHWM:") / 1024.0,
      cpu::gemm_description().c_str(), comm.size(), comm_s, wait_s);
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
