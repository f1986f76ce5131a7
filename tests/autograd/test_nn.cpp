// nn layers and the optimizer: parameter names, a training loop that must drive the loss down,
// and step-to-step determinism.
#include <gtest/gtest.h>

#include "nn/layers.h"
#include "train/adam.h"
#include "util.h"

namespace attend {
namespace {

class TinyClassifier : public nn::Module {
 public:
  TinyClassifier()
      : attn(8, 2, 3, "attn"), norm(8), proj(8, 4, true, 3, "proj") {
    register_module("attn", attn);
    register_module("norm", norm);
    register_module("proj", proj);
  }
  ag::Variable forward(const ag::Variable& x) const {
    ag::Variable h = norm.forward(attn.forward(x, x, {}), x);
    return proj.forward(h);
  }
  nn::MultiHeadAttention attn;
  nn::LayerNorm norm;
  nn::Linear proj;
};

TEST(Nn, ParameterNamesAreDottedPaths) {
  TinyClassifier m;
  std::vector<std::string> names;
  for (const auto& [n, v] : m.named_parameters()) names.push_back(n);
  const std::vector<std::string> expect = {
      "attn.q_proj.weight", "attn.q_proj.bias",  "attn.k_proj.weight", "attn.k_proj.bias",
      "attn.v_proj.weight", "attn.v_proj.bias",  "attn.out_proj.weight", "attn.out_proj.bias",
      "norm.weight",        "norm.bias",         "proj.weight",        "proj.bias"};
  EXPECT_EQ(names, expect);
  EXPECT_EQ(m.num_parameters(), 4 * (64 + 8) + 16 + 36);
}

TEST(Nn, TrainingDrivesTheLossDownDeterministically) {
  auto train = [] {
    TinyClassifier m;
    train::Adam adam(m.named_parameters(), {1e-2, 0.9, 0.98, 1e-9, 0.0});
    const Tensor x = test::randn({4, 5, 8}, 1).to(DType::kF32);
    std::vector<int32_t> t(20);
    for (int i = 0; i < 20; ++i) t[i] = (i * 7) % 4;
    const Tensor targets = test::ids(t, {20});
    std::vector<double> losses;
    for (int step = 0; step < 60; ++step) {
      m.zero_grad();
      ag::Tape tape;
      ag::Variable loss;
      {
        ag::TapeScope s(&tape);
        loss = ag::cross_entropy(ag::reshape(m.forward(ag::Variable(x)), {20, 4}), targets,
                                 {0.0, -1});
      }
      losses.push_back(loss.value().item());
      tape.backward(loss);
      adam.step();
    }
    return losses;
  };
  const auto a = train(), b = train();
  EXPECT_EQ(a, b);  // bit-identical on the same thread count
  EXPECT_LT(a.back(), 0.25 * a.front()) << "first " << a.front() << " last " << a.back();
}

TEST(Nn, AttentionConfigSelectsLocalAttention) {
  EXPECT_TRUE(test::throws_with([] { nn::parse_attention_kind("sparse"); },
                                {"model.attention", "'sparse'"}));
  nn::AttentionConfig zero;
  zero.kind = nn::AttentionKind::kLocal;
  EXPECT_TRUE(test::throws_with([&] { nn::MultiHeadAttention(8, 2, 1, "a", DType::kF32, zero); },
                                {"window", "> 0", "got 0"}));
  // A local layer with a window covering the whole sequence equals the full layer; a narrow
  // window changes the output.
  nn::AttentionConfig wide{nn::AttentionKind::kLocal, 100, 0},
      narrow{nn::AttentionKind::kLocal, 1, 0};
  nn::MultiHeadAttention full(8, 2, 7, "attn"), local_wide(8, 2, 7, "attn", DType::kF32, wide),
      local_narrow(8, 2, 7, "attn", DType::kF32, narrow);
  const ag::Variable x(test::randn({2, 9, 8}, 3).to(DType::kF32));
  const Tensor a = full.forward(x, x, {}).value(), b = local_wide.forward(x, x, {}).value(),
               c = local_narrow.forward(x, x, {}).value();
  EXPECT_TRUE(test::close(b, a, 1e-6, 1e-6));
  EXPECT_FALSE(test::close(c, a, 1e-3, 1e-3));
}

TEST(Nn, AdamRequiresGradients) {
  TinyClassifier m;
  train::Adam adam(m.named_parameters(), {});
  EXPECT_TRUE(test::throws_with([&] { adam.step(); }, {"attn.q_proj.weight", "no gradient"}));
}

}  // namespace
}  // namespace attend
