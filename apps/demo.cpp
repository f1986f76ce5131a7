// The demo task: reverse a sequence of digits. Inputs have random lengths (4..12) and are
// padded, so the padding mask and ignored-target loss are exercised for real. The model is one
// post-norm Transformer encoder with learned positions counted from both ends and a tied output
// projection. Output t must copy input L-1-t: a query (knowing t) has to find the key whose
// index from the end is t, which only attention can do; the loss falls to near zero.
#include "apps/demo.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "apps/cli.h"
#include "autograd/functions.h"
#include "core/allocator.h"
#include "core/rng.h"
#include "core/thread_pool.h"
#include "nn/transformer.h"
#include "ops/ops.h"
#include "train/adam.h"

namespace attend::apps {
namespace {

constexpr int32_t kPad = 0;  // digits are tokens 1..10
constexpr int32_t kVocab = 11;
constexpr int64_t kMinLen = 4, kMaxLen = 12;

struct Batch {
  Tensor src;      // i32 [B, T]
  Tensor pos;      // i32 [B, T]: index from the start
  Tensor rpos;     // i32 [B, T]: index from the end (L - 1 - t)
  Tensor targets;  // i32 [B * T], pad positions = kPad (ignored)
  Tensor lengths;  // i32 [B]
};

Batch make_batch(int64_t B, uint64_t seed, uint64_t index) {
  std::vector<int32_t> src(B * kMaxLen, kPad), tgt(B * kMaxLen, kPad), pos(B * kMaxLen, 0),
      rpos(B * kMaxLen, 0), len(B);
  for (int64_t b = 0; b < B; ++b) {
    const uint64_t row = index * static_cast<uint64_t>(B) + static_cast<uint64_t>(b);
    const auto r = philox4x32(seed, 0xba7c4, row);
    const int64_t L = kMinLen + static_cast<int64_t>(r[0] % (kMaxLen - kMinLen + 1));
    len[b] = static_cast<int32_t>(L);
    for (int64_t t = 0; t < L; ++t)
      src[b * kMaxLen + t] =
          1 +
          static_cast<int32_t>(philox4x32(seed, 0xd161 + row, static_cast<uint64_t>(t))[0] % 10);
    for (int64_t t = 0; t < L; ++t) {
      tgt[b * kMaxLen + t] = src[b * kMaxLen + (L - 1 - t)];
      pos[b * kMaxLen + t] = static_cast<int32_t>(t);
      rpos[b * kMaxLen + t] = static_cast<int32_t>(L - 1 - t);
    }
  }
  return {Tensor::from_vector(src, {B, kMaxLen}), Tensor::from_vector(pos, {B, kMaxLen}),
          Tensor::from_vector(rpos, {B, kMaxLen}), Tensor::from_vector(tgt, {B * kMaxLen}),
          Tensor::from_vector(len, {B})};
}

/// The library's Transformer layer (nn/blocks.h) as the demo uses it: post-norm, ReLU, no
/// encoder attention.
nn::TransformerConfig layer_config(const DemoOptions& o) {
  nn::TransformerConfig c;
  c.d_model = o.dim, c.heads = o.heads, c.ffn = o.ffn;
  c.activation = nn::Activation::kRelu;
  c.norm = nn::Norm::kPost;
  return c;
}

class ReverseModel : public nn::Module {
 public:
  explicit ReverseModel(const DemoOptions& o)
      : embed(kVocab, o.dim, o.seed, "embed_tokens"),
        positions(kMaxLen, o.dim, o.seed, "embed_positions"),
        reverse_positions(kMaxLen, o.dim, o.seed, "embed_reverse_positions"),
        dim(o.dim) {
    register_module("embed_tokens", embed);
    register_module("embed_positions", positions);
    register_module("embed_reverse_positions", reverse_positions);
    for (int64_t i = 0; i < o.layers; ++i)
      layers.push_back(std::make_unique<nn::TransformerLayer>(
          layer_config(o), false, nn::AttentionConfig{}, o.seed, "layers." + std::to_string(i)));
    for (size_t i = 0; i < layers.size(); ++i)
      register_module("layers." + std::to_string(i), *layers[i]);
  }

  /// Returns logits [B * T, V].
  ag::Variable forward(const Batch& b, double dropout, uint64_t step) const {
    const int64_t B = b.src.size(0), T = b.src.size(1);
    nn::LayerInputs in;
    in.self_mask.key_lengths = b.lengths;
    ag::Variable x = ag::add(ag::affine(embed.forward(b.src), std::sqrt(static_cast<double>(dim))),
                             ag::add(positions.forward(b.pos), reverse_positions.forward(b.rpos)));
    x = ag::dropout(x, dropout, 0x5eed, mix_stream(step, 0));
    for (size_t i = 0; i < layers.size(); ++i)
      x = layers[i]->forward(x, in, dropout, mix_stream(step, 100 + i));
    // Tied output projection: logits = x E^T.
    return ag::linear(ag::reshape(x, {B * T, dim}), embed.weight, ag::Variable());
  }

  nn::Embedding embed, positions, reverse_positions;
  std::vector<std::unique_ptr<nn::TransformerLayer>> layers;
  int64_t dim;
};

double exact_match(const ReverseModel& model, uint64_t seed, int64_t batches, int64_t B) {
  int64_t correct = 0, total = 0;
  for (int64_t i = 0; i < batches; ++i) {
    const Batch b = make_batch(B, seed, static_cast<uint64_t>(i));
    const Tensor logits = model.forward(b, 0.0, 0).value();
    // The best token of every position (token 0 is never predicted; ties: the lower id).
    const std::vector<int32_t> best_of =
        ops::top_k(logits.reshape({-1, kVocab}), 1, {0}).indices.to_vector<int32_t>();
    const int32_t* tg = b.targets.data<int32_t>();
    const int32_t* len = b.lengths.data<int32_t>();
    for (int64_t r = 0; r < B; ++r) {
      bool ok = true;
      for (int64_t t = 0; t < len[r]; ++t) {
        const int32_t best = best_of[static_cast<size_t>(r * kMaxLen + t)];
        ok = ok && best == tg[r * kMaxLen + t];
      }
      correct += ok;
      ++total;
    }
  }
  return static_cast<double>(correct) / static_cast<double>(total);
}

}  // namespace

double run_demo(const DemoOptions& o) {
  ReverseModel model(o);
  train::Adam adam(model.named_parameters(), {o.lr, 0.9, 0.98, 1e-9, 0.0});
  std::printf("attend demo: reverse digit sequences (length %lld-%lld, padded)\n",
              static_cast<long long>(kMinLen), static_cast<long long>(kMaxLen));
  std::printf("  model: %lld encoder layers, d_model %lld, %lld heads, FFN %lld, %lld parameters\n",
              static_cast<long long>(o.layers), static_cast<long long>(o.dim),
              static_cast<long long>(o.heads), static_cast<long long>(o.ffn),
              static_cast<long long>(model.num_parameters()));
  std::printf("  threads %d, GEMM %s, batch %lld, %lld steps\n", num_threads(),
              ops::cpu_gemm_description().c_str(), static_cast<long long>(o.batch),
              static_cast<long long>(o.steps));
  const ops::CrossEntropyConfig ce{0.0, kPad};
  Arena arena;
  const auto t0 = std::chrono::steady_clock::now();
  double ema = -1.0;
  for (int64_t step = 1; step <= o.steps; ++step) {
    // Warm-up then inverse-square-root decay, as in the paper's schedule.
    const double warm = 100.0;
    adam.set_lr(o.lr * std::min(static_cast<double>(step) / warm,
                                std::sqrt(warm / static_cast<double>(step))));
    model.zero_grad();
    double loss_value;
    {
      ArenaScope scope(&arena);  // every activation of this step comes from the arena
      const Batch b = make_batch(o.batch, o.seed, static_cast<uint64_t>(step));
      ag::Tape tape;
      ag::Variable loss;
      {
        ag::TapeScope rec(&tape);
        loss = ag::cross_entropy(model.forward(b, 0.1, static_cast<uint64_t>(step)), b.targets, ce);
      }
      loss_value = loss.value().item();
      tape.backward(loss);
    }
    arena.reset();
    adam.step();
    ema = ema < 0 ? loss_value : 0.9 * ema + 0.1 * loss_value;
    if (step % o.log_every == 0 || step == 1) {
      const double secs =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::printf("  step %5lld  loss %.4f  (avg %.4f)  lr %.2e  %.1fs\n",
                  static_cast<long long>(step), loss_value, ema, adam.lr(), secs);
      std::fflush(stdout);
    }
  }
  model.set_training(false);
  const double acc = exact_match(model, o.seed + 1000, 8, 64);
  std::printf("  held-out exact match: %.1f%% of 512 unseen sequences reversed perfectly\n",
              100.0 * acc);
  return acc;
}

}  // namespace attend::apps

namespace attend::apps {

void add_demo(CLI::App& root, int& exit_code) {
  struct DemoArgs {
    DemoOptions demo;
    double min_accuracy = -1.0;
    int threads = 0;
  };
  auto a = std::make_shared<DemoArgs>();
  CLI::App* c = root.add_subcommand(
      "demo", "train a tiny Transformer on generated data (reverse digits); report accuracy");
  c->footer(
      "Trains a one-layer Transformer encoder to reverse digit sequences and reports its\n"
      "held-out exact-match accuracy.");
  c->add_option("--steps", a->demo.steps, "training steps")
      ->check(integer_in(1, INT64_MAX))
      ->capture_default_str();
  c->add_option("--seed", a->demo.seed, "data and initialisation seed")->capture_default_str();
  c->add_option("--min-accuracy", a->min_accuracy,
                "exit with status 1 when held-out exact match is below F (0..1)")
      ->check(CLI::Range(0.0, 1.0))
      ->option_text("F");
  add_threads_flag(*c, a->threads);
  c->callback([a, &exit_code] {
    apply_threads(a->threads);
    const double acc = run_demo(a->demo);
    exit_code = 0;
    if (a->min_accuracy >= 0 && acc < a->min_accuracy) {
      std::fprintf(stderr, "attend: held-out accuracy %.3f is below --min-accuracy %.3f\n", acc,
                   a->min_accuracy);
      exit_code = 1;
    }
  });
}

}  // namespace attend::apps
