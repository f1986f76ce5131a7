// The Transformer against the independent PyTorch implementation (golden files written by
// tools/gen_golden.py): logits, label-smoothed loss, every parameter gradient and the first ten
// Adam losses, with per-tensor tolerances; plus padding invariance and config errors.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "io/safetensors.h"
#include "nn/transformer.h"
#include "train/adam.h"
#include "train/schedule.h"
#include "util.h"

namespace attend {
namespace {

std::string golden(const std::string& name) {
  return std::string(ATTEND_GOLDEN_DIR) + "/" + name + ".safetensors";
}

nn::TransformerConfig config_from(const io::SafeTensors& st) {
  auto m = [&](const char* k) { return st.metadata.at(k); };
  nn::TransformerConfig c;
  c.src_vocab = std::stoll(m("vocab"));
  c.tgt_vocab = std::stoll(m("tgt_vocab"));
  c.d_model = std::stoll(m("d_model"));
  c.ffn = std::stoll(m("ffn"));
  c.heads = std::stoll(m("heads"));
  c.encoder_layers = c.decoder_layers = std::stoll(m("layers"));
  c.dropout = 0.0;
  c.norm = nn::parse_norm(m("norm"));
  c.activation = nn::parse_activation(m("activation"));
  c.positions = nn::parse_positions(m("positions"));
  c.max_positions = std::stoll(m("max_positions"));
  c.share_embeddings = m("share_embeddings") == "True";
  return c;
}

// max |a - b| <= rtol * max |b| + atol
void expect_close(const Tensor& got, const Tensor& want, double rtol, double atol,
                  const std::string& what) {
  ASSERT_EQ(got.shape(), want.shape()) << what;
  const auto g = got.contiguous().to_vector<float>(), w = want.to_vector<float>();
  double err = 0, scale = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    err = std::max(err, std::abs(static_cast<double>(g[i]) - w[i]));
    scale = std::max(scale, std::abs(static_cast<double>(w[i])));
  }
  EXPECT_LE(err, rtol * scale + atol) << what << ": max error " << err << " (scale " << scale << ")";
}

// Copies the golden weights into `model`; every parameter must have one and vice versa.
void load_golden_weights(const io::SafeTensors& st, const nn::Module& model) {
  std::set<std::string> ours, theirs;
  for (const auto& [name, v] : model.named_parameters()) {
    ours.insert(name);
    const_cast<Tensor&>(v.value()).copy_from(st.at("weight." + name));
  }
  for (const auto& [name, t] : st.tensors)
    if (name.rfind("weight.", 0) == 0) theirs.insert(name.substr(7));
  EXPECT_EQ(ours, theirs);
}

class Golden : public ::testing::TestWithParam<const char*> {};

TEST_P(Golden, MatchesPyTorchReference) {
  const io::SafeTensors st = io::load_safetensors(golden(GetParam()));
  const nn::TransformerConfig c = config_from(st);
  nn::EncoderDecoder model(c, 1);
  load_golden_weights(st, model);

  auto run = [&](int b) {
    const std::string p = "batch" + std::to_string(b) + ".";
    return std::make_tuple(st.at(p + "src"), st.at(p + "src_lengths"), st.at(p + "tgt_in"),
                           st.at(p + "tgt_lengths"), st.at(p + "tgt_out"));
  };
  const ops::CrossEntropyConfig ce{0.1, 0};
  {
    auto [src, sl, ti, tl, to] = run(0);
    model.zero_grad();
    ag::Tape tape;
    ag::Variable logits, loss;
    {
      ag::TapeScope rec(&tape);
      logits = model.forward(src, sl, ti, tl, 0);
      loss = ag::cross_entropy(logits, to, ce);
    }
    tape.backward(loss);
    expect_close(logits.value(), st.at("logits"), 1e-5, 1e-6, "logits");
    EXPECT_NEAR(loss.value().item(), st.at("loss").to_vector<float>()[0], 1e-5);
    for (const auto& [name, v] : model.named_parameters())
      expect_close(v.grad(), st.at("grad." + name), 1e-4, 1e-7, "grad " + name);
  }
  // First ten training losses under Adam and the paper's schedule.
  train::Adam adam(model.named_parameters(), {1.0, 0.9, 0.98, 1e-9, 0.0});
  const train::Schedule sched{train::ScheduleKind::kNoam, std::stod(st.metadata.at("lr_scale")),
                              std::stoll(st.metadata.at("warmup")), c.d_model};
  const auto want = st.at("train_losses").to_vector<float>();
  for (int step = 1; step <= 10; ++step) {
    auto [src, sl, ti, tl, to] = run((step - 1) % 2);
    adam.set_lr(sched.at(step));
    model.zero_grad();
    ag::Tape tape;
    ag::Variable loss;
    {
      ag::TapeScope rec(&tape);
      loss = ag::cross_entropy(model.forward(src, sl, ti, tl, 0), to, ce);
    }
    tape.backward(loss);
    adam.step();
    EXPECT_NEAR(loss.value().item(), want[step - 1], 2e-4 * want[step - 1]) << "step " << step;
  }
}

INSTANTIATE_TEST_SUITE_P(Transformer, Golden,
                         ::testing::Values("transformer_post_relu_shared",
                                           "transformer_pre_gelu_learned"));

// The decoder-only language model against the same reference (DecoderOnly in
// tools/transformer_reference.py): logits, loss, every gradient, ten Adam steps.
// The language models' golden check: logits of the real positions, the loss, every gradient
// and ten Adam steps, for a decoder-only (next-token targets) or an encoder-only (masked-LM
// targets: PAD where no loss) model.
template <class Model>
void check_lm_golden(const std::string& name, nn::Arch arch) {
  const io::SafeTensors st = io::load_safetensors(golden(name));
  ASSERT_EQ(st.metadata.at("arch"), nn::arch_name(arch));
  nn::TransformerConfig c = config_from(st);
  c.arch = arch;
  Model model(c, 1);
  load_golden_weights(st, model);
  auto run = [&](int b) -> std::tuple<Tensor, Tensor, Tensor> {
    const std::string p = "batch" + std::to_string(b) + ".";
    return {st.at(p + "ids"), st.at(p + "lengths"), st.at(p + "targets")};
  };
  const ops::CrossEntropyConfig ce{0.0, 0};
  {
    const auto [ids, lengths, targets] = run(0);
    model.zero_grad();
    ag::Tape tape;
    ag::Variable logits, loss;
    {
      ag::TapeScope rec(&tape);
      logits = model.forward(ids, lengths, 0);
      loss = ag::cross_entropy(logits, targets, ce);
    }
    tape.backward(loss);
    // Rows past a sequence's length are padding: their logits are not compared (what they
    // attend to differs between the implementations), and the loss ignores them in both.
    const std::vector<int32_t> len = Tensor(lengths).to_vector<int32_t>();
    const int64_t T = ids.size(1);
    for (int64_t b = 0; b < ids.size(0); ++b)
      expect_close(logits.value().slice(0, b * T, b * T + len[b]),
                   st.at("logits").slice(0, b * T, b * T + len[b]).contiguous(), 1e-5, 1e-6,
                   "logits of sequence " + std::to_string(b));
    EXPECT_NEAR(loss.value().item(), st.at("loss").to_vector<float>()[0], 1e-5);
    for (const auto& [param, v] : model.named_parameters())
      expect_close(v.grad(), st.at("grad." + param), 1e-4, 1e-7, "grad " + param);
  }
  train::Adam adam(model.named_parameters(), {1.0, 0.9, 0.98, 1e-9, 0.0});
  const train::Schedule sched{train::ScheduleKind::kNoam, std::stod(st.metadata.at("lr_scale")),
                              std::stoll(st.metadata.at("warmup")), c.d_model};
  const auto want = st.at("train_losses").to_vector<float>();
  for (int step = 1; step <= 10; ++step) {
    auto [ids, lengths, targets] = run((step - 1) % 2);
    adam.set_lr(sched.at(step));
    model.zero_grad();
    ag::Tape tape;
    ag::Variable loss;
    {
      ag::TapeScope rec(&tape);
      loss = ag::cross_entropy(model.forward(ids, lengths, 0), targets, ce);
    }
    tape.backward(loss);
    adam.step();
    EXPECT_NEAR(loss.value().item(), want[step - 1], 2e-4 * want[step - 1]) << "step " << step;
  }
}

class GoldenLm : public ::testing::TestWithParam<const char*> {};

TEST_P(GoldenLm, MatchesPyTorchReference) {
  check_lm_golden<nn::DecoderOnly>(GetParam(), nn::Arch::kDecoderOnly);
}

INSTANTIATE_TEST_SUITE_P(DecoderOnly, GoldenLm,
                         ::testing::Values("decoder_only_pre_gelu_learned_shared",
                                           "decoder_only_post_relu_sinusoidal"));

class GoldenMlm : public ::testing::TestWithParam<const char*> {};

TEST_P(GoldenMlm, MatchesPyTorchReference) {
  check_lm_golden<nn::EncoderOnly>(GetParam(), nn::Arch::kEncoderOnly);
}

INSTANTIATE_TEST_SUITE_P(EncoderOnly, GoldenMlm,
                         ::testing::Values("encoder_only_pre_gelu_learned_shared",
                                           "encoder_only_post_relu_sinusoidal"));

nn::TransformerConfig tiny() {
  nn::TransformerConfig c = nn::TransformerConfig::preset("tiny");
  c.d_model = 32, c.ffn = 64, c.heads = 4, c.encoder_layers = c.decoder_layers = 2;
  c.src_vocab = c.tgt_vocab = 20;
  c.dropout = 0.0;
  return c;
}

// A sentence's logits do not depend on the padding added to batch it with a longer one.
TEST(Transformer, PaddingInvariance) {
  nn::EncoderDecoder model(tiny(), 7);
  const Tensor src1 = Tensor::from_vector<int32_t>({5, 6, 7}, {1, 3});
  const Tensor tgt1 = Tensor::from_vector<int32_t>({2, 8, 9}, {1, 3});
  const Tensor l1 = Tensor::from_vector<int32_t>({3}, {1});
  const Tensor ref = model.forward(src1, l1, tgt1, l1, 0).value();
  const Tensor src2 = Tensor::from_vector<int32_t>({5, 6, 7, 0, 0, 9, 9, 9, 9, 9}, {2, 5});
  const Tensor tgt2 = Tensor::from_vector<int32_t>({2, 8, 9, 0, 2, 4, 4, 4}, {2, 4});
  const Tensor ls = Tensor::from_vector<int32_t>({3, 5}, {2});
  const Tensor lt = Tensor::from_vector<int32_t>({3, 4}, {2});
  const Tensor both = model.forward(src2, ls, tgt2, lt, 0).value();  // [2 * 4, V]
  expect_close(both.slice(0, 0, 3), ref, 1e-5, 1e-6, "padded row");
}

TEST(Transformer, PresetsAreThePapers) {
  const auto base = nn::TransformerConfig::preset("base");
  EXPECT_EQ(base.d_model, 512);
  EXPECT_EQ(base.ffn, 2048);
  EXPECT_EQ(base.heads, 8);
  EXPECT_EQ(base.encoder_layers, 6);
  EXPECT_DOUBLE_EQ(base.dropout, 0.1);
  const auto big = nn::TransformerConfig::preset("big");
  EXPECT_EQ(big.d_model, 1024);
  EXPECT_EQ(big.ffn, 4096);
  EXPECT_EQ(big.heads, 16);
  EXPECT_DOUBLE_EQ(big.dropout, 0.3);
  auto c = base;
  c.src_vocab = c.tgt_vocab = 37000;
  nn::EncoderDecoder m(c, 1);  // the paper's base model with a 37k joint vocabulary: ~63M
  EXPECT_NEAR(static_cast<double>(m.num_parameters()), 63.1e6, 0.3e6);
}

// gpt2-small with GPT-2's 50,257-token vocabulary has GPT-2 small's 124,439,808 parameters
// (tied embeddings, learned positions for 1,024 tokens, 12 pre-norm layers, final layer norm).
TEST(Transformer, Gpt2SmallPresetIsGpt2Small) {
  auto c = nn::TransformerConfig::preset("gpt2-small");
  EXPECT_EQ(c.arch, nn::Arch::kDecoderOnly);
  EXPECT_EQ(c.norm, nn::Norm::kPre);
  EXPECT_EQ(c.activation, nn::Activation::kGelu);
  EXPECT_EQ(c.positions, nn::Positions::kLearned);
  EXPECT_EQ(c.max_positions, 1024);
  c.src_vocab = c.tgt_vocab = 50257;
  const nn::DecoderOnly m(c, 1);
  EXPECT_EQ(m.num_parameters(), 124439808);
  EXPECT_EQ(nn::TransformerConfig::preset("gpt-tiny").arch, nn::Arch::kDecoderOnly);
}

TEST(Transformer, ConfigErrorsNameTheKey) {
  auto c = tiny();
  c.heads = 5;
  EXPECT_TRUE(test::throws_with([&] { nn::EncoderDecoder m(c, 1); }, {"model.heads"}));
  EXPECT_TRUE(test::throws_with([] { nn::parse_norm("middle"); }, {"model.norm", "'middle'"}));
  EXPECT_TRUE(test::throws_with([] { nn::parse_activation("tanh"); }, {"model.activation", "'tanh'"}));
  EXPECT_TRUE(test::throws_with([] { nn::parse_positions("rope"); }, {"model.positions", "'rope'"}));
  // Every value's name parses back to it.
  for (auto a : {nn::Activation::kRelu, nn::Activation::kGelu, nn::Activation::kGeluTanh,
                 nn::Activation::kSilu})
    EXPECT_EQ(nn::parse_activation(nn::activation_name(a)), a);
  for (auto p : {nn::Positions::kSinusoidal, nn::Positions::kSinusoidalHalves,
                 nn::Positions::kLearned})
    EXPECT_EQ(nn::parse_positions(nn::positions_name(p)), p);
  for (auto n : {nn::Norm::kPost, nn::Norm::kPre}) EXPECT_EQ(nn::parse_norm(nn::norm_name(n)), n);
  EXPECT_THROW(nn::TransformerConfig::preset("huge"), Error);
  for (double gain : {0.0, -1.0, std::nan("")}) {
    c = tiny();
    c.qkv_init_gain = gain;
    EXPECT_TRUE(test::throws_with([&] { nn::EncoderDecoder m(c, 1); }, {"model.qkv_init_gain"}))
        << gain;
  }
}

// Both sinusoid layouts hold sin(p / 10000^(2i/d)) and cos(...) of frequency i: the paper's in
// columns 2i and 2i + 1, the halves layout (Marian's) in columns i and d/2 + i.
TEST(Transformer, SinusoidLayouts) {
  const int64_t n = 40, d = 16;
  const auto paper = nn::sinusoidal_positions(n, d).to_vector<float>();
  const auto halves = nn::sinusoidal_positions(n, d, true).to_vector<float>();
  for (int64_t p = 0; p < n; ++p)
    for (int64_t i = 0; i < d / 2; ++i) {
      const double angle = static_cast<double>(p) / std::pow(10000.0, 2.0 * i / d);
      EXPECT_FLOAT_EQ(paper[p * d + 2 * i], std::sin(angle));
      EXPECT_FLOAT_EQ(paper[p * d + 2 * i + 1], std::cos(angle));
      EXPECT_FLOAT_EQ(halves[p * d + i], std::sin(angle));
      EXPECT_FLOAT_EQ(halves[p * d + d / 2 + i], std::cos(angle));
    }
  EXPECT_THROW(nn::sinusoidal_positions(4, 7, true), Error);
}

// model.qkv_init_gain scales the initial q/k/v projections of every attention block (encoder
// self, decoder self and cross) and nothing else: same seed, same streams, bound times gain.
TEST(Transformer, QkvInitGainScalesOnlyQueryKeyValue) {
  auto c = tiny();
  nn::EncoderDecoder plain(c, 7);
  c.qkv_init_gain = 0.5;  // a power of two: the scaled bound rounds exactly
  nn::EncoderDecoder scaled(c, 7);
  const auto a = plain.named_parameters(), b = scaled.named_parameters();
  ASSERT_EQ(a.size(), b.size());
  int qkv = 0, other = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a[i].first, b[i].first);
    const std::string& name = a[i].first;
    const bool is_qkv = name.find("_attn.") != std::string::npos &&
                        (name.find(".q_proj.weight") != std::string::npos ||
                         name.find(".k_proj.weight") != std::string::npos ||
                         name.find(".v_proj.weight") != std::string::npos);
    const Tensor& x = a[i].second.value();
    const Tensor& y = b[i].second.value();
    ASSERT_EQ(x.numel(), y.numel());
    bool any_nonzero = false;
    for (int64_t j = 0; j < x.numel(); ++j) {
      const float want = is_qkv ? 0.5f * x.data<float>()[j] : x.data<float>()[j];
      ASSERT_EQ(y.data<float>()[j], want) << name << "[" << j << "]";
      any_nonzero |= x.data<float>()[j] != 0.0f;
    }
    if (is_qkv) {
      EXPECT_TRUE(any_nonzero) << name;
      ++qkv;
    } else {
      ++other;
    }
  }
  // 2 encoder layers x 1 attention + 2 decoder layers x 2 attentions, 3 projections each.
  EXPECT_EQ(qkv, (2 + 2 * 2) * 3);
  EXPECT_GT(other, 0);
}

TEST(Transformer, SourceEndsWithEosOnlyWhenConfigured) {
  using Ids = std::vector<int32_t>;
  auto c = tiny();  // source_eos off: ids pass through, cut to max_len
  EXPECT_EQ(c.source({5, 6, 7}), (Ids{5, 6, 7}));
  EXPECT_EQ(c.source({5, 6, 7}, 2), (Ids{5, 6}));
  c.source_eos = true;
  EXPECT_EQ(c.source({5, 6, 7}), (Ids{5, 6, 7, c.eos_id}));
  EXPECT_EQ(c.source({5, 6, 7}, 4), (Ids{5, 6, 7, c.eos_id}));
  EXPECT_EQ(c.source({5, 6, 7}, 3), (Ids{5, 6, c.eos_id}));  // cut, and still ended
  EXPECT_EQ(c.source({5}, 1), (Ids{c.eos_id}));
  EXPECT_EQ(c.source({}), Ids{});  // an empty line stays empty: it translates to nothing
  EXPECT_EQ(c.source_length(3), 4);
  EXPECT_EQ(c.source_length(0), 0);
  c.source_eos = false;
  EXPECT_EQ(c.source_length(3), 3);
}

}  // namespace
}  // namespace attend
