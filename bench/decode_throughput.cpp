// decode_throughput: translation speed of the incremental decoder (KV cache) with greedy search
// or beam search, on a randomly initialised model and random source sentences of --len tokens.
// Every output is forced to exactly --out-len tokens (no end of sentence before it, none
// after), so that the work per sentence is fixed and equal for attend and for the PyTorch
// peer (tools/decode_peer.py), whatever the random weights prefer.
//
// usage: decode_throughput [--preset small|base|tiny|big] [--vocab 32000] [--len 24]
//                          [--out-len 24] [--beam 1] [--batch 1] [--sentences 16]
//                          [--warmup 1] [--threads N] [--precision fp32|bf16|int8]
// --precision: bf16 stores the weights in bf16, int8 quantizes the linear layers per output
// row (nn::Module::store_weights, as `translate --precision` does).
// --batch 1 translates --sentences sentences one at a time and reports per-sentence latency
// (p50, p90); a larger batch translates --sentences sentences in batches of --batch. Prints
// one JSON object: sentences/s, target tokens/s (output tokens of the best hypotheses), the
// latencies, and peak RSS.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "args.h"
#include "core/allocator.h"
#include "core/rng.h"
#include "core/thread_pool.h"
#include "decode/session.h"
#include "op_profile.h"
#include "peak.h"

namespace attend {
namespace {

using Clock = std::chrono::steady_clock;

double percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const size_t at = static_cast<size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(at, v.size() - 1)];
}

int run(int argc, char** argv) {
  const char* usage =
      "usage: decode_throughput [--preset small|base|tiny|big] [--vocab 32000] [--len 24]\n"
      "                         [--out-len 24] [--beam 1] [--batch 1] [--sentences 16]\n"
      "                         [--warmup 1] [--threads N] [--precision fp32|bf16|int8]\n"
      "                         [--profile 0|1]\n"
      "  translates random --len-token sources with a random model, every output --out-len\n"
      "  tokens; prints one JSON object (sentences/s, target tokens/s, latencies, peak RSS);\n"
      "  --profile 1 then decodes the first batch again with every op timed (table on stderr)\n";
  const bench::Args args(argc, argv, "decode_throughput", usage,
                         {"--preset", "--vocab", "--len", "--out-len", "--beam", "--batch",
                          "--sentences", "--warmup", "--threads", "--precision", "--profile"});
  const std::string preset = args.str("--preset", "small");
  const int64_t V = args.integer("--vocab", 32000, 5), L = args.integer("--len", 24, 1);
  const int64_t out_len = args.integer("--out-len", L, 1);
  const int64_t beam = args.integer("--beam", 1, 1), B = args.integer("--batch", 1, 1);
  const int64_t N = args.integer("--sentences", 16, 1), warmup = args.integer("--warmup", 1);
  args.apply_threads();
  nn::TransformerConfig c = nn::TransformerConfig::preset(preset);
  c.src_vocab = c.tgt_vocab = V;
  const std::string precision = args.str("--precision", "fp32");
  if (precision != "fp32" && precision != "bf16" && precision != "int8") {
    std::fprintf(stderr, "decode_throughput: --precision: expected fp32, bf16 or int8, got '%s'\n",
                 precision.c_str());
    return 2;
  }
  nn::EncoderDecoder model(c, 1);
  model.set_training(false);
  const int64_t params = model.num_parameters();  // before int8 adds its scales
  if (precision != "fp32") model.store_weights(precision == "bf16" ? DType::kBF16 : DType::kI8);

  std::vector<std::vector<int32_t>> ex(static_cast<size_t>(N + warmup * B));
  for (size_t i = 0; i < ex.size(); ++i)
    for (int64_t t = 0; t < L; ++t)
      ex[i].push_back(4 + static_cast<int32_t>(philox4x32(7, i, static_cast<uint64_t>(t))[0] %
                                               static_cast<uint32_t>(V - 4)));
  decode::SearchOptions o;
  o.beam = beam;
  o.min_length = out_len;     // no EOS before out_len tokens ...
  o.max_extra = out_len - L;  // ... and none after: every output has out_len tokens
  if (o.max_extra < 0) {
    std::fprintf(stderr, "decode_throughput: --out-len must be >= --len\n");
    return 2;
  }
  HeapScope heap;
  decode::Session session(model);
  std::vector<double> per_batch;
  int64_t tokens = 0, done = 0;
  double total = 0;
  // The requests of the batch that starts at example `start`.
  const auto batch_rows = [&](int64_t start) {
    std::vector<decode::Request> rows;
    for (int64_t r = start; r < std::min<int64_t>(start + B, static_cast<int64_t>(ex.size())); ++r)
      rows.push_back({ex[static_cast<size_t>(r)], o, static_cast<uint64_t>(r), r});
    return rows;
  };
  for (int64_t start = 0; start < static_cast<int64_t>(ex.size()); start += B) {
    const std::vector<decode::Request> rows = batch_rows(start);
    const auto t0 = Clock::now();
    session.admit(rows);  // one session for every batch, as translate runs it
    while (!session.idle()) session.step();
    const auto out = session.retire();
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    if (start < warmup * B) continue;
    per_batch.push_back(s);
    total += s;
    done += static_cast<int64_t>(rows.size());
    for (const auto& r : out) tokens += static_cast<int64_t>(r.hypotheses[0].tokens.size());
  }
  if (args.integer("--profile", 0, 0, 1) == 1) {
    const std::vector<decode::Request> rows = batch_rows(0);
    bench::print_op_profile(3, "batch", [&] {
      session.admit(rows);
      while (!session.idle()) session.step();
      session.retire();
    });
  }
  std::printf(
      "{\"impl\": \"attend\", \"precision\": \"%s\", \"preset\": \"%s\", \"vocab\": %lld, \"len\": "
      "%lld, "
      "\"out_len\": %lld, \"beam\": %lld, \"batch\": %lld, \"sentences\": %lld, "
      "\"threads\": %d, \"params\": %lld, \"seconds\": %.4f, \"sentences_per_s\": %.2f, "
      "\"tgt_tokens_per_s\": %.1f, \"batch_p50_s\": %.5f, \"batch_p90_s\": %.5f, "
      "\"peak_rss_mib\": %.1f}\n",
      precision.c_str(), preset.c_str(), static_cast<long long>(V), static_cast<long long>(L),
      static_cast<long long>(out_len), static_cast<long long>(beam), static_cast<long long>(B),
      static_cast<long long>(done), num_threads(), static_cast<long long>(params), total,
      static_cast<double>(done) / total, static_cast<double>(tokens) / total,
      percentile(per_batch, 0.5), percentile(per_batch, 0.9), bench::status_kib("VmHWM:") / 1024.0);
  return 0;
}

}  // namespace
}  // namespace attend

int main(int argc, char** argv) {
  try {
    return attend::run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "decode_throughput: %s\n", e.what());
    return 1;
  }
}
