// The three model families built from the shared blocks (nn/blocks.h): parameter names, what
// each position sees (causal vs bidirectional), padding invariance, the decoder-only cached
// step equal to the full forward pass (rows at different positions, a row joining late),
// learning on a fixed batch, and config errors naming the key.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "core/device.h"
#include "nn/transformer.h"
#include "ops/ops.h"
#include "train/adam.h"
#include "util.h"

namespace attend {
namespace {

nn::TransformerConfig config(nn::Arch arch, nn::Norm norm = nn::Norm::kPre,
                             nn::Positions positions = nn::Positions::kLearned) {
  nn::TransformerConfig c = nn::TransformerConfig::preset("tiny");
  c.arch = arch;
  c.d_model = 32, c.ffn = 64, c.heads = 4, c.encoder_layers = c.decoder_layers = 2;
  c.src_vocab = c.tgt_vocab = 23;
  c.dropout = 0.0;
  c.norm = norm;
  c.positions = positions;
  c.activation = nn::Activation::kGelu;
  c.max_positions = 32;
  return c;
}

std::set<std::string> names(const nn::Module& m) {
  std::set<std::string> out;
  for (const auto& [name, v] : m.named_parameters()) out.insert(name);
  return out;
}

TEST(Families, ParameterNamesFollowTheReference) {
  const nn::DecoderOnly gpt(config(nn::Arch::kDecoderOnly), 1);
  const auto g = names(gpt);
  for (const char* n : {"embed_tokens.weight", "decoder.embed_positions.weight",
                        "decoder.layers.0.self_attn.q_proj.weight", "decoder.layers.1.fc2.bias",
                        "decoder.layers.1.final_layer_norm.weight", "decoder.layer_norm.bias"})
    EXPECT_TRUE(g.count(n)) << n;
  for (const auto& n : g) {
    EXPECT_EQ(n.find("encoder"), std::string::npos) << n;  // no encoder, no encoder attention
  }
  const nn::EncoderOnly bert(config(nn::Arch::kEncoderOnly, nn::Norm::kPost), 1);
  const auto b = names(bert);
  for (const char* n :
       {"embed_tokens.weight", "encoder.layers.0.self_attn.out_proj.bias",
        "encoder.layers.1.fc1.weight", "encoder.layers.0.self_attn_layer_norm.weight"})
    EXPECT_TRUE(b.count(n)) << n;
  EXPECT_FALSE(b.count("encoder.layer_norm.weight"));  // post-norm: no final norm
  for (const auto& n : b) EXPECT_EQ(n.find("decoder"), std::string::npos) << n;
  // The encoder-decoder's layers are the same blocks: the decoder's have encoder attention.
  const nn::EncoderDecoder t(config(nn::Arch::kEncoderDecoder), 1);
  const auto e = names(t);
  EXPECT_TRUE(e.count("decoder.layers.1.encoder_attn.k_proj.weight"));
  EXPECT_FALSE(e.count("encoder.layers.1.encoder_attn.k_proj.weight"));
  // Untied output projections where the embeddings are not shared.
  nn::TransformerConfig untied = config(nn::Arch::kDecoderOnly);
  untied.share_embeddings = false;
  const auto u = names(nn::DecoderOnly(untied, 1));
  EXPECT_TRUE(u.count("output_projection.weight"));
  EXPECT_TRUE(u.count("decoder.embed_tokens.weight"));
}

// Changing token t changes no decoder-only output before t, and every encoder-only output.
TEST(Families, DecoderOnlyIsCausalEncoderOnlyIsNot) {
  const Tensor a = test::ids({4, 9, 11, 5, 7, 3}, {1, 6});
  const Tensor b = test::ids({4, 9, 11, 5, 7, 20}, {1, 6});  // last token differs
  const Tensor len = test::ids({6}, {1});
  nn::DecoderOnly gpt(config(nn::Arch::kDecoderOnly), 3);
  gpt.set_training(false);
  const Tensor ga = gpt.forward(a, len, 0).value(), gb = gpt.forward(b, len, 0).value();
  EXPECT_TRUE(test::close(gb.slice(0, 0, 5), ga.slice(0, 0, 5), 1e-6, 1e-7));
  EXPECT_FALSE(test::close(gb.slice(0, 5, 6), ga.slice(0, 5, 6), 1e-3, 1e-4));
  nn::EncoderOnly bert(config(nn::Arch::kEncoderOnly), 3);
  bert.set_training(false);
  const Tensor ba = bert.forward(a, len, 0).value(), bb = bert.forward(b, len, 0).value();
  EXPECT_FALSE(test::close(bb.slice(0, 0, 1), ba.slice(0, 0, 1), 1e-3, 1e-4));
}

// A sequence's outputs do not depend on the padding that batches it with a longer one.
TEST(Families, PaddingInvariance) {
  const Tensor one = test::ids({4, 9, 11}, {1, 3}), l1 = test::ids({3}, {1});
  const Tensor two = test::ids({4, 9, 11, 0, 0, 6, 6, 6, 6, 6}, {2, 5});
  const Tensor l2 = test::ids({3, 5}, {2});
  nn::DecoderOnly gpt(config(nn::Arch::kDecoderOnly, nn::Norm::kPost, nn::Positions::kSinusoidal),
                      5);
  gpt.set_training(false);
  EXPECT_TRUE(test::close(gpt.forward(two, l2, 0).value().slice(0, 0, 3),
                          gpt.forward(one, l1, 0).value(), 1e-5, 1e-6));
  nn::EncoderOnly bert(config(nn::Arch::kEncoderOnly), 5);
  bert.set_training(false);
  EXPECT_TRUE(test::close(bert.forward(two, l2, 0).value().slice(0, 0, 3),
                          bert.forward(one, l1, 0).value(), 1e-5, 1e-6));
}

// Decoding step by step through the cache gives the full forward pass's hidden states, with
// rows at different positions and a row that joins after the first has started.
// Relative positions run with the rest of T5's layout: RMSNorm, bias-free linears, a gated
// feed-forward, heads * head_dim != d_model, unscaled scores, a scaled output.
TEST(Families, DecoderOnlyCachedStepsEqualTheFullPass) {
  for (const nn::Positions pos :
       {nn::Positions::kLearned, nn::Positions::kSinusoidal, nn::Positions::kRelative}) {
    for (const nn::Norm norm : {nn::Norm::kPre, nn::Norm::kPost}) {
      SCOPED_TRACE(format("{} {}", nn::positions_name(pos), nn::norm_name(norm)));
      nn::TransformerConfig c = config(nn::Arch::kDecoderOnly, norm, pos);
      if (pos == nn::Positions::kRelative) {
        c.norm_type = nn::NormType::kRms;
        c.linear_bias = false;
        c.gated_ffn = true;
        c.head_dim = 12;
        c.scale_attention = false;
        c.relative_buckets = 8, c.relative_max_distance = 6;  // logarithmic from distance 4
        c.output_scale = 0.5;
      }
      nn::DecoderOnly gpt(c, 11);
      gpt.set_training(false);
      const std::vector<std::vector<int32_t>> seqs = {{2, 7, 8, 9, 10, 12, 15}, {2, 19, 3, 4}};
      nn::KvCache cache = gpt.make_cache();
      cache.reserve(2, 8, 0, 0);
      // Row 0 starts alone; row 1 joins at row 0's fourth token; they finish apart.
      for (int step = 0; step < 7; ++step) {
        std::vector<int32_t> tok, at, slot;
        tok.push_back(seqs[0][step]), at.push_back(step), slot.push_back(0);
        const int j = step - 3;
        if (j >= 0 && j < 4) tok.push_back(seqs[1][j]), at.push_back(j), slot.push_back(1);
        const int64_t n = static_cast<int64_t>(tok.size());
        nn::DecodeRows rows;
        rows.tokens = test::ids(tok, {n});
        rows.positions = test::ids(at, {n});
        rows.self_slots = test::ids(slot, {n});
        rows.span = 1 + *std::max_element(at.begin(), at.end());
        const Tensor h = gpt.decode_rows(rows, cache);  // [n, D]
        for (int64_t r = 0; r < n; ++r) {
          const auto& s = seqs[static_cast<size_t>(slot[r])];
          const int64_t T = at[r] + 1;
          const Tensor prefix = test::ids(std::vector<int32_t>(s.begin(), s.begin() + T), {1, T});
          const Tensor full = gpt.hidden(prefix, test::ids({static_cast<int32_t>(T)}, {1}), 0)
                                  .value()
                                  .reshape({T, 32})
                                  .slice(0, T - 1, T);
          EXPECT_TRUE(test::close(h.slice(0, r, r + 1), full, 1e-5, 1e-5))
              << "step " << step << " row " << r;
        }
      }
    }
  }
}

// Both new families learn a fixed batch (next token; masked token) under Adam.
template <typename Model>
double train_loss(Model& model, const Tensor& in, const Tensor& len, const Tensor& targets,
                  int steps, double* first) {
  train::Adam adam(model.named_parameters(), {3e-3, 0.9, 0.98, 1e-9, 0.0});
  ops::CrossEntropyConfig ce;
  ce.ignore_index = 0;
  double loss = 0;
  for (int s = 0; s < steps; ++s) {
    model.zero_grad();
    ag::Tape tape;
    ag::Variable l;
    {
      ag::TapeScope rec(&tape);
      l = ag::cross_entropy(model.forward(in, len, 0), targets, ce);
    }
    tape.backward(l);
    adam.step();
    loss = l.value().item();
    if (s == 0) *first = loss;
  }
  return loss;
}

// T5's buckets, worked out by hand from its definition: bidirectional 32 buckets up to distance
// 128 (16 a side, exact below 8, logarithmic to 128), causal 32 (exact below 16).
TEST(Families, RelativeBucketsAreT5s) {
  const auto bi = [](int64_t rel) { return nn::relative_bucket(rel, true, 32, 128); };
  EXPECT_EQ(bi(0), 0);
  EXPECT_EQ(bi(-1), 1);
  EXPECT_EQ(bi(1), 17);
  EXPECT_EQ(bi(-7), 7);
  EXPECT_EQ(bi(-8), 8);    // 8 + floor(log(8/8) / log(16) * 8)
  EXPECT_EQ(bi(-20), 10);  // 8 + floor(log(2.5) / log(16) * 8) = 8 + floor(2.64)
  EXPECT_EQ(bi(20), 26);
  EXPECT_EQ(bi(-127), 15);  // 8 + floor(7.97)
  EXPECT_EQ(bi(-200), 15);  // capped at the last bucket of the side
  EXPECT_EQ(bi(200), 31);
  const auto causal = [](int64_t rel) { return nn::relative_bucket(rel, false, 32, 128); };
  EXPECT_EQ(causal(5), 0);  // keys after the query (masked) share bucket 0
  EXPECT_EQ(causal(-5), 5);
  EXPECT_EQ(causal(-15), 15);
  EXPECT_EQ(causal(-16), 16);
  EXPECT_EQ(causal(-50), 24);  // 16 + floor(log(50/16) / log(8) * 16) = 16 + floor(8.77)
  EXPECT_EQ(causal(-1000), 31);
}

TEST(Families, DecoderOnlyAndEncoderOnlyLearn) {
  const Tensor in = test::ids({2, 5, 6, 7, 8, 9, 2, 10, 11, 12, 0, 0}, {2, 6});
  const Tensor len = test::ids({6, 4}, {2});
  {  // next token: targets are the inputs shifted left, padding ignored
    const Tensor next = test::ids({5, 6, 7, 8, 9, 3, 10, 11, 12, 3, 0, 0}, {12});
    nn::DecoderOnly gpt(config(nn::Arch::kDecoderOnly), 2);
    double first = 0;
    const double last = train_loss(gpt, in, len, next, 60, &first);
    EXPECT_LT(last, 0.1 * first) << "first " << first;
  }
  {  // masked tokens (id 4 stands for the mask): loss only on the masked positions
    const Tensor masked = test::ids({2, 4, 6, 7, 4, 9, 2, 10, 4, 12, 0, 0}, {2, 6});
    const Tensor want = test::ids({0, 5, 0, 0, 8, 0, 0, 0, 11, 0, 0, 0}, {12});
    nn::EncoderOnly bert(config(nn::Arch::kEncoderOnly), 2);
    double first = 0;
    const double last = train_loss(bert, masked, len, want, 60, &first);
    EXPECT_LT(last, 0.1 * first) << "first " << first;
  }
}

// Module::to(device, dtype): the model computes in f64 while its parameters, their gradients
// and Adam's moments stay f32. The f64 forward is the f32 one without its rounding: logits
// agree to f32 tolerance (rtol 1e-4 over a few layers of O(1) values), gradients too (their
// size varies more: atol 1e-5 at gradient scale ~1e-2); the cached decoder step runs in f64
// with an f64 cache.
TEST(ModuleTo, ComputesInAnotherDtypeWithF32MasterWeights) {
  const Tensor src = test::ids({4, 9, 11, 5, 6, 7, 8, 3}, {2, 4}), sl = test::ids({4, 3}, {2});
  const Tensor tin = test::ids({2, 8, 9, 2, 10, 0}, {2, 3}), tl = test::ids({3, 2}, {2});
  const Tensor tout = test::ids({8, 9, 3, 10, 3, 0}, {6});
  ops::CrossEntropyConfig ce;
  ce.ignore_index = 0;
  ce.label_smoothing = 0.1;
  auto run = [&](nn::EncoderDecoder& m, ag::Variable* logits) {
    m.zero_grad();
    ag::Tape tape;
    ag::Variable loss;
    {
      ag::TapeScope rec(&tape);
      *logits = m.forward(src, sl, tin, tl, 0);
      loss = ag::cross_entropy(*logits, tout, ce);
    }
    tape.backward(loss);
    return loss.value().item();
  };
  nn::EncoderDecoder f32(config(nn::Arch::kEncoderDecoder, nn::Norm::kPost), 4);
  nn::EncoderDecoder f64(config(nn::Arch::kEncoderDecoder, nn::Norm::kPost), 4);
  f64.to(Device::cpu(), DType::kF64);
  EXPECT_EQ(f64.compute_dtype(), DType::kF64);
  ag::Variable l32, l64;
  const double loss32 = run(f32, &l32), loss64 = run(f64, &l64);
  EXPECT_EQ(l64.value().dtype(), DType::kF64);
  EXPECT_NEAR(loss64, loss32, 1e-5 * loss32);
  EXPECT_TRUE(test::close(l64.value(), l32.value(), 1e-4, 1e-5));
  const auto p32 = f32.named_parameters(), p64 = f64.named_parameters();
  ASSERT_EQ(p32.size(), p64.size());
  for (size_t i = 0; i < p32.size(); ++i) {
    EXPECT_EQ(p64[i].second.value().dtype(), DType::kF32) << p64[i].first;
    EXPECT_EQ(p64[i].second.grad().dtype(), DType::kF32) << p64[i].first;
    EXPECT_TRUE(test::close(p64[i].second.grad(), p32[i].second.grad(), 1e-3, 1e-5))
        << p64[i].first;
  }
  train::Adam adam(f64.named_parameters(), {1e-3, 0.9, 0.98, 1e-9, 0.0});
  adam.step();  // f32 moments, f32 update
  EXPECT_EQ(adam.state()[0].m.dtype(), DType::kF32);
  // Decoding in f64: the cache takes the compute dtype.
  nn::TransformerConfig c = config(nn::Arch::kDecoderOnly);
  nn::DecoderOnly gpt(c, 9);
  gpt.set_training(false);
  gpt.to(Device::cpu(), DType::kF64);
  nn::KvCache cache = gpt.make_cache();
  cache.reserve(1, 4, 0, 0);
  EXPECT_EQ(cache.layers[0].self_k.dtype(), DType::kF64);
  nn::DecodeRows rows;
  for (int32_t t = 0; t < 3; ++t) {
    rows.tokens = test::ids({5 + t}, {1});
    rows.positions = test::ids({t}, {1});
    rows.self_slots = test::ids({0}, {1});
    rows.span = t + 1;
    const Tensor h = gpt.decode_rows(rows, cache);
    EXPECT_EQ(h.dtype(), DType::kF64);
    const Tensor full = gpt.hidden(test::ids({5, 6, 7}, {1, 3}).slice(1, 0, t + 1).contiguous(),
                                   test::ids({t + 1}, {1}), 0)
                            .value()
                            .reshape({t + 1, 32})
                            .slice(0, t, t + 1);
    EXPECT_TRUE(test::close(h, full, 1e-10, 1e-10)) << t;
  }
}

// A dtype without kernels fails on its first op, naming the op and the dtype; a device this
// build lacks fails at to(); integer compute dtypes are refused.
TEST(ModuleTo, MissingKernelsAndBadTargetsAreClearErrors) {
  nn::DecoderOnly gpt(config(nn::Arch::kDecoderOnly), 1);
  gpt.to(Device::cpu(), DType::kBF16);
  EXPECT_TRUE(test::throws_with(
      [&] {
        gpt.forward(test::ids({1, 2}, {1, 2}), test::ids({2}, {1}), 0);
      },
      {"bf16"}));
  EXPECT_TRUE(
      test::throws_with([&] { gpt.to(Device::cpu(), DType::kI32); }, {"Module::to", "i32"}));
  if (cuda_device_count() == 0) {
    EXPECT_TRUE(test::throws_with([&] { gpt.to(Device::cuda(0), DType::kF32); }, {"cuda"}));
  }
  for (const auto& [name, v] : gpt.named_parameters())
    EXPECT_TRUE(v.value().device().is_cpu()) << name << ": a failed move leaves it in place";
}

TEST(Families, ConfigErrorsNameTheKey) {
  EXPECT_TRUE(test::throws_with([] { nn::parse_arch("gpt"); }, {"model.arch", "'gpt'"}));
  EXPECT_TRUE(test::throws_with([] { nn::DecoderOnly(config(nn::Arch::kEncoderOnly), 1); },
                                {"model.arch", "decoder_only", "encoder_only"}));
  EXPECT_TRUE(test::throws_with([] { nn::EncoderDecoder(config(nn::Arch::kDecoderOnly), 1); },
                                {"model.arch", "encoder_decoder", "decoder_only"}));
  nn::TransformerConfig c = config(nn::Arch::kDecoderOnly);
  c.encoder_layers = 0;  // unused by a decoder-only model
  EXPECT_NO_THROW(c.validate());
  c.decoder_layers = 0;
  EXPECT_TRUE(test::throws_with([&] { c.validate(); }, {"model.decoder_layers"}));
  nn::TransformerConfig e = config(nn::Arch::kEncoderOnly);
  e.encoder_layers = 0;
  EXPECT_TRUE(test::throws_with([&] { e.validate(); }, {"model.encoder_layers"}));
}

}  // namespace
}  // namespace attend
