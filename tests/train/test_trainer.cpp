// The Trainer object and its flat gradient buffer: gradients land in one buffer exactly as they
// did per parameter, the gradient-ready hook fires once per parameter with the final gradient,
// an outside token count normalises the step, steps learn, and save + resume continues exactly.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "core/error.h"
#include "data/batcher.h"
#include "data/numbers.h"
#include "io/safetensors.h"
#include "models/config.h"
#include "ops/ops.h"
#include "tiny.h"
#include "train/options.h"
#include "train/trainer.h"
#include "util.h"

namespace attend {
namespace {

io::Config keys() {
  io::Config c = test::tiny_keys();
  c.set("train.lr", "0.003", "test");
  c.set("train.schedule", "constant", "test");
  c.set("train.warmup", "1", "test");
  return c;
}

struct Fixture : test::TinyData {
  Fixture() : TinyData(keys()) {}
};

std::vector<float> flat_grads(const nn::EncoderDecoder& m) {
  std::vector<float> out;
  for (const auto& [name, v] : m.named_parameters()) {
    const auto g = v.grad().to_vector<float>();
    out.insert(out.end(), g.begin(), g.end());
  }
  return out;
}

void backward(nn::EncoderDecoder& m, const data::Batch& b) {
  ag::Tape tape;
  ag::Variable loss;
  {
    ag::TapeScope rec(&tape);
    loss = ag::cross_entropy(m.forward(b.src, b.src_lengths, b.tgt_in, b.tgt_lengths, 7), b.tgt_out,
                             {0.1, data::kIgnore}, ops::Reduction::kSum);
  }
  tape.backward(loss);
}

TEST(GradientBuffer, HoldsTheSameGradientsAsPerParameterTensors) {
  const Fixture f;
  nn::EncoderDecoder a(f.config, 3), b(f.config, 3);
  a.zero_grad();  // per-parameter tensors
  train::GradientBuffer buffer(b.named_parameters());
  const auto params = b.named_parameters();
  int64_t offset = 0;
  for (size_t i = 0; i < buffer.size(); ++i) {  // parameter order, no gaps
    EXPECT_EQ(buffer.offset(i), offset);
    EXPECT_EQ(buffer.name(i), params[i].first);
    EXPECT_TRUE(params[i].second.grad().shares_storage(buffer.flat()));
    offset += params[i].second.value().numel();
  }
  EXPECT_EQ(buffer.numel(), offset);
  const data::Batch batch = f.batch(0, 6);
  for (int round = 0; round < 2; ++round) {  // accumulation over two backward passes
    backward(a, batch);
    backward(b, batch);
  }
  EXPECT_EQ(buffer.flat().to_vector<float>(), flat_grads(a));  // bit for bit
  EXPECT_EQ(flat_grads(b), flat_grads(a));
  buffer.zero();
  for (float x : flat_grads(b)) ASSERT_EQ(x, 0.0f);
}

TEST(GradientBuffer, ReadyHookFiresOncePerParameterWithItsFinalGradient) {
  const Fixture f;
  nn::EncoderDecoder m(f.config, 4);
  train::GradientBuffer buffer(m.named_parameters());
  std::vector<int> fired(buffer.size(), 0);
  std::vector<std::vector<float>> seen(buffer.size());
  std::vector<size_t> order;
  buffer.on_ready([&](size_t i) {
    ++fired[i];
    seen[i] = buffer.view(i).to_vector<float>();
    order.push_back(i);
  });
  backward(m, f.batch(0, 5));
  for (size_t i = 0; i < buffer.size(); ++i) {
    EXPECT_EQ(fired[i], 1) << buffer.name(i);
    EXPECT_EQ(seen[i], buffer.view(i).to_vector<float>())
        << buffer.name(i) << " changed after its hook";
  }
  // Backward runs from the output to the input: the output layer's parameters are ready before
  // the encoder's first layer.
  auto position = [&](const std::string& needle) {
    for (size_t k = 0; k < order.size(); ++k)
      if (buffer.name(order[k]).find(needle) != std::string::npos) return static_cast<int64_t>(k);
    return int64_t{-1};
  };
  ASSERT_GE(position("decoder.layers.1"), 0);
  ASSERT_GE(position("encoder.layers.0"), 0);
  EXPECT_LT(position("decoder.layers.1"), position("encoder.layers.0"));
  buffer.on_ready(nullptr);
  std::fill(fired.begin(), fired.end(), 0);
  backward(m, f.batch(0, 5));
  for (int n : fired) EXPECT_EQ(n, 0);
}

// `steps` more steps of ta and tb on `batch` give the same losses and gradient norms, bit for
// bit, and leave a and b with the same weights (a resumed run continues the original exactly).
void expect_same_course(train::Trainer& ta, const nn::EncoderDecoder& a, train::Trainer& tb,
                        const nn::EncoderDecoder& b, const data::Batch& batch, int steps) {
  for (int i = 0; i < steps; ++i) {
    const auto ra = ta.step({&batch}), rb = tb.step({&batch});
    EXPECT_EQ(ra.loss, rb.loss) << "step " << i;
    EXPECT_EQ(ra.grad_norm, rb.grad_norm) << "step " << i;
  }
  const auto pa = a.named_parameters(), pb = b.named_parameters();
  for (size_t i = 0; i < pa.size(); ++i)
    EXPECT_EQ(pa[i].second.value().to_vector<float>(), pb[i].second.value().to_vector<float>())
        << pa[i].first;
}

TEST(Trainer, OutsideTokenCountScalesTheStep) {
  const Fixture f;
  train::TrainOptions o = train::TrainOptions::from_config(keys());
  nn::EncoderDecoder a(f.config, 5), b(f.config, 5);
  train::Trainer ta(a, f.tok, o), tb(b, f.tok, o);
  const data::Batch b1 = f.batch(0, 4), b2 = f.batch(4, 4);
  const auto ra = ta.step({&b1, &b2});
  EXPECT_EQ(ra.tokens, b1.tgt_tokens + b2.tgt_tokens);
  const auto rb = tb.step({&b1, &b2}, 2 * ra.tokens);  // as if another rank had as many tokens
  EXPECT_EQ(rb.tokens, 2 * ra.tokens);
  EXPECT_NEAR(rb.loss, ra.loss / 2, 1e-12 * ra.loss);
  EXPECT_NEAR(rb.grad_norm, ra.grad_norm / 2, 1e-5 * ra.grad_norm);
  EXPECT_EQ(ta.state().step, 1);
  EXPECT_EQ(ta.state().target_tokens, ra.tokens);
  EXPECT_TRUE(test::throws_with([&] { ta.step({}); }, {"no batches"}));
}

TEST(Trainer, StepsLearnAndResumeContinuesExactly) {
  const Fixture f;
  io::Config c = keys();
  c.set("train.ema_decay", "0.5", "test");
  const train::TrainOptions o = train::TrainOptions::from_config(c);
  nn::EncoderDecoder a(f.config, 6);
  train::Trainer ta(a, f.tok, o);
  const data::Batch batch = f.batch(0, 8);
  const double first = ta.step({&batch}).loss;
  for (int i = 0; i < 40; ++i) ta.step({&batch});
  EXPECT_LT(ta.step({&batch}).loss, 0.75 * first);
  const std::string dir = test::tmp_path("trainer", "resume");
  ta.save(dir, c.to_json(), true);

  nn::EncoderDecoder b(f.config, 99);  // other initial weights: all must come from the checkpoint
  train::Trainer tb(b, f.tok, o);
  tb.resume(dir);
  EXPECT_EQ(tb.state().step, ta.state().step);
  expect_same_course(ta, a, tb, b, batch, 2);
  ASSERT_NE(ta.ema(), nullptr);
  const auto ea = ta.ema()->named(), eb = tb.ema()->named();
  for (size_t i = 0; i < ea.size(); ++i)
    EXPECT_EQ(ea[i].second.to_vector<float>(), eb[i].second.to_vector<float>()) << ea[i].first;
  std::filesystem::remove_all(dir);
}

// train.precision bf16: the products of forward and backward take bf16 operands (f32 sums),
// everything else stays f32. Tolerances: each product's operands lose at most 2^-8 relative
// (bf16's 8-bit significand), so the first step's loss -- the same weights, only the products'
// rounding differs -- moves by a few 2^-8 of the logits' scale: 2^-6 relative is asserted.
// After that the two runs take different (rounded) gradients and drift apart like two seeds
// of one recipe, but must learn alike: over 50 steps every loss within 2% of fp32's and the
// last one below 3/4 of the first in both. They must also differ somewhere (else bf16 was not
// used). Resume continues bit for bit, and the checkpoint's weights are f32.
TEST(Trainer, Bf16ProductsTrackFp32AndResumeExactly) {
  const Fixture f;
  io::Config c = keys();
  c.set("train.precision", "bf16", "test");
  const train::TrainOptions o16 = train::TrainOptions::from_config(c);
  EXPECT_EQ(o16.precision, DType::kBF16);
  nn::EncoderDecoder a(f.config, 6), b(f.config, 6);
  if (!ops::bf16_products_native()) {  // a CPU without AMX or AVX-512 BF16: a clear refusal
    EXPECT_TRUE(test::throws_with([&] { train::Trainer t(a, f.tok, o16); },
                                  {"train.precision bf16", "avx512_bf16", "fp32"}));
    GTEST_SKIP() << "no native bf16 products here (oneDNN: " << ops::bf16_products_kernel()
                 << "); the refusal was checked";
  }
  train::Trainer t16(a, f.tok, o16), t32(b, f.tok, train::TrainOptions::from_config(keys()));
  const data::Batch batch = f.batch(0, 8);
  double first = 0, last16 = 0, last32 = 0, worst = 0;
  bool differ = false;
  for (int i = 0; i < 50; ++i) {
    const auto r16 = t16.step({&batch}), r32 = t32.step({&batch});
    if (i == 0) {
      first = r32.loss;
      EXPECT_LE(std::abs(r16.loss - r32.loss), std::ldexp(r32.loss, -6)) << "first step";
    }
    worst = std::max(worst, std::abs(r16.loss - r32.loss) / r32.loss);
    differ = differ || r16.loss != r32.loss;
    last16 = r16.loss;
    last32 = r32.loss;
  }
  EXPECT_LE(worst, 0.02) << "the largest relative loss difference over 50 steps";
  std::printf("bf16 vs fp32 over 50 steps: largest relative loss difference %.2e\n", worst);
  EXPECT_TRUE(differ) << "bf16 products gave fp32's losses bit for bit: were they used?";
  EXPECT_LT(last16, 0.75 * first);
  EXPECT_LT(last32, 0.75 * first);

  const std::string dir = test::tmp_path("trainer", "resume-bf16");
  t16.save(dir, c.to_json(), true);
  // The checkpoint's weights are f32 as written to disk, not only in memory.
  const io::SafeTensors saved = io::load_safetensors(dir + "/model.safetensors");
  ASSERT_FALSE(saved.tensors.empty());
  for (const auto& [name, t] : saved.tensors) EXPECT_EQ(t.dtype(), DType::kF32) << name;
  nn::EncoderDecoder r(f.config, 99);
  train::Trainer tr(r, f.tok, o16);
  tr.resume(dir);
  expect_same_course(t16, a, tr, r, batch, 3);
  // The checkpoint loads into an fp32 trainer too (it holds fp32 weights and moments).
  nn::EncoderDecoder plain(f.config, 98);
  train::Trainer tp(plain, f.tok, train::TrainOptions::from_config(keys()));
  tp.resume(dir);
  EXPECT_TRUE(std::isfinite(tp.step({&batch}).loss));
  std::filesystem::remove_all(dir);
}

TEST(Trainer, ValidatesWithLossAndBleu) {
  const Fixture f;
  io::Config c = keys();
  c.set("train.valid_beam", "2", "test");
  nn::EncoderDecoder m(f.config, 8);
  train::Trainer t(m, f.tok, train::TrainOptions::from_config(c));
  train::ValidationSet set{{f.examples.begin(), f.examples.begin() + 6}, {}, {}};
  for (const auto& p : data::generate_numbers(5, 6, 0, 9999, data::NumberLanguage::kEnglish)) {
    set.sources.push_back(p.digits);
    set.references.push_back(p.words);
  }
  const train::Validation v = t.validate(set);
  EXPECT_TRUE(std::isfinite(v.loss));
  EXPECT_GT(v.loss, 0);
  EXPECT_NEAR(v.ppl, std::exp(v.loss), 1e-9 * v.ppl);
  EXPECT_GE(v.bleu, 0);
  EXPECT_GE(v.exact, 0);
  EXPECT_LE(v.exact, 1);
}

TEST(TrainOptions, ErrorsNameTheKey) {
  io::Config c = keys();
  c.set("train.valid_metric", "chrf", "test");
  EXPECT_TRUE(test::throws_with([&] { train::TrainOptions::from_config(c); },
                                {"train.valid_metric", "chrf"}));
  c = keys();
  c.set("train.schedule", "linear", "test");
  EXPECT_TRUE(test::throws_with([&] { train::TrainOptions::from_config(c); },
                                {"train.schedule", "linear", "cosine"}));
  c = keys();
  c.set("train.precision", "int8", "test");
  EXPECT_TRUE(test::throws_with([&] { train::TrainOptions::from_config(c); },
                                {"train.precision", "int8", "fp32 or bf16"}));
  c = keys();
  c.set("train.max_tokens", "0", "test");
  EXPECT_TRUE(
      test::throws_with([&] { train::TrainOptions::from_config(c); }, {"train.max_tokens"}));
}

}  // namespace
}  // namespace attend
