// Every op's backward against central finite differences, in double, on tiny shapes.
#include <gtest/gtest.h>

#include "autograd/functions.h"
#include "autograd/gradcheck.h"
#include "util.h"

namespace attend {
namespace {

using ag::Variable;
using test::randn;
using V = std::vector<Variable>;

void expect_gradcheck(const ag::DiffFn& f, const std::vector<Tensor>& inputs) {
  const ag::GradcheckResult r = ag::gradcheck(f, inputs);
  EXPECT_TRUE(r.ok) << r.report << "max abs error " << r.max_abs_error;
}

TEST(Gradcheck, Matmul) {
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      expect_gradcheck([=](const V& x) { return ag::matmul(x[0], x[1], ta, tb); },
                       {randn(ta ? Shape{2, 4, 3} : Shape{2, 3, 4}, 1),
                        randn(tb ? Shape{2, 5, 4} : Shape{2, 4, 5}, 2)});
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      expect_gradcheck([=](const V& x) { return ag::matmul(x[0], x[1], ta, tb); },
                       {randn(ta ? Shape{2, 4, 3} : Shape{2, 3, 4}, 3),
                        randn(tb ? Shape{5, 4} : Shape{4, 5}, 4)});
}

TEST(Gradcheck, Linear) {
  expect_gradcheck([](const V& x) { return ag::linear(x[0], x[1], x[2]); },
                   {randn({2, 3, 4}, 5), randn({5, 4}, 6), randn({5}, 7)});
  expect_gradcheck([](const V& x) { return ag::linear(x[0], x[1], Variable()); },
                   {randn({3, 4}, 8), randn({2, 4}, 9)});
}

TEST(Gradcheck, Elementwise) {
  const Tensor a = randn({3, 4}, 10), b = randn({3, 4}, 11);
  const Tensor pos = test::rand_uniform({3, 4}, 12, 0.5, 2.0);
  expect_gradcheck([](const V& x) { return ag::add(x[0], x[1]); }, {a, b});
  expect_gradcheck([](const V& x) { return ag::sub(x[0], x[1]); }, {a, b});
  expect_gradcheck([](const V& x) { return ag::mul(x[0], x[1]); }, {a, b});
  expect_gradcheck([](const V& x) { return ag::affine(x[0], -1.5, 0.25); }, {a});
  expect_gradcheck([](const V& x) { return ag::exp(x[0]); }, {a});
  expect_gradcheck([](const V& x) { return ag::log(x[0]); }, {pos});
  expect_gradcheck([](const V& x) { return ag::rsqrt(x[0]); }, {pos});
  expect_gradcheck([](const V& x) { return ag::bias_add(x[0], x[1]); }, {a, randn({4}, 13)});
  expect_gradcheck([](const V& x) { return ag::relu(x[0]); }, {a});
  expect_gradcheck([](const V& x) { return ag::gelu(x[0]); }, {a});
  expect_gradcheck([](const V& x) { return ag::gelu_tanh(x[0]); }, {a});
  expect_gradcheck([](const V& x) { return ag::silu(x[0]); }, {a});
  expect_gradcheck([](const V& x) { return ag::dropout(x[0], 0.4, 3, 8); }, {a});
}

TEST(Gradcheck, Reductions) {
  const Tensor a = randn({3, 5}, 14);
  expect_gradcheck([](const V& x) { return ag::sum(x[0]); }, {a});
  expect_gradcheck([](const V& x) { return ag::sum_last(x[0]); }, {a});
  expect_gradcheck([](const V& x) { return ag::broadcast_last(x[0], 4); }, {a});
}

TEST(Gradcheck, Softmax) {
  expect_gradcheck([](const V& x) { return ag::softmax(x[0]); }, {randn({3, 6}, 15)});
  expect_gradcheck([](const V& x) { return ag::log_softmax(x[0]); }, {randn({3, 6}, 16)});
  const Tensor lens = test::ids({5, 2}, {2});
  for (bool causal : {false, true}) {
    ops::AttentionMask m{lens, causal, 1};
    expect_gradcheck([=](const V& x) { return ag::softmax(x[0], m); }, {randn({2, 2, 3, 5}, 17)});
  }
}

TEST(Gradcheck, LayerNorm) {
  expect_gradcheck([](const V& x) { return ag::layer_norm(x[0], Variable(), x[1], x[2]); },
                   {randn({3, 6}, 18), randn({6}, 19), randn({6}, 20)});
  expect_gradcheck([](const V& x) { return ag::layer_norm(x[0], x[1], x[2], x[3]); },
                   {randn({2, 2, 5}, 21), randn({2, 2, 5}, 22), randn({5}, 23), randn({5}, 24)});
  // The residual stream output (pre-norm blocks) carries its own gradient.
  expect_gradcheck(
      [](const V& x) {
        Variable s;
        Variable y = ag::layer_norm(x[0], x[1], x[2], x[3], 1e-5, &s);
        return ag::add(y, ag::mul(s, s));
      },
      {randn({2, 5}, 25), randn({2, 5}, 26), randn({5}, 27), randn({5}, 28)});
}

TEST(Gradcheck, RmsNorm) {
  expect_gradcheck([](const V& x) { return ag::rms_norm(x[0], Variable(), x[1]); },
                   {randn({3, 6}, 18), randn({6}, 19)});
  expect_gradcheck(
      [](const V& x) {
        Variable s;
        Variable y = ag::rms_norm(x[0], x[1], x[2], 1e-6, &s);
        return ag::add(y, ag::mul(s, s));
      },
      {randn({2, 2, 5}, 21), randn({2, 2, 5}, 22), randn({5}, 23)});
}

TEST(Gradcheck, Embedding) {
  const Tensor idx = test::ids({1, 3, 1, 0, 4, 1}, {2, 3});
  expect_gradcheck([=](const V& x) { return ag::embedding(idx, x[0]); }, {randn({6, 4}, 29)});
}

TEST(Gradcheck, Attention) {
  const Tensor lens = test::ids({4, 2}, {2});
  for (bool causal : {false, true}) {
    ops::AttentionMask m{lens, causal, 1};
    expect_gradcheck([=](const V& x) { return ag::attention(x[0], x[1], x[2], m, 0.7); },
                     {randn({2, 2, 3, 4}, 30), randn({2, 2, 4, 4}, 31), randn({2, 2, 4, 4}, 32)});
    expect_gradcheck(
        [=](const V& x) { return ag::attention_reference(x[0], x[1], x[2], m, 0.7); },
        {randn({2, 2, 3, 4}, 33), randn({2, 2, 4, 4}, 34), randn({2, 2, 4, 4}, 35)});
  }
}

TEST(Gradcheck, AttentionWithRelativePositionBias) {
  // The bias (T5's) is a differentiable input: shared by the batch [H, span] and per row
  // [B, H, span]; causal with a query offset, and through the reference attention too.
  const Tensor lens = test::ids({4, 2}, {2});
  for (bool causal : {false, true}) {
    ops::AttentionMask m{lens, causal, 1};
    const int64_t span = 3 + 1 + 4 - 1;
    for (const Shape& shape : {Shape{2, span}, Shape{2, 2, span}}) {
      expect_gradcheck([=](const V& x) { return ag::attention(x[0], x[1], x[2], m, 0.7, x[3]); },
                       {randn({2, 2, 3, 4}, 30), randn({2, 2, 4, 4}, 31), randn({2, 2, 4, 4}, 32),
                        randn(shape, 36)});
      expect_gradcheck(
          [=](const V& x) { return ag::attention_reference(x[0], x[1], x[2], m, 0.7, x[3]); },
          {randn({2, 2, 3, 4}, 33), randn({2, 2, 4, 4}, 34), randn({2, 2, 4, 4}, 35),
           randn(shape, 37)});
    }
  }
}

TEST(Gradcheck, LocalAttentionWithGlobalTokens) {
  for (bool causal : {false, true})
    for (int64_t globals : {0, 1}) {
      ops::AttentionMask m;
      m.causal = causal;
      m.local = true;
      m.window = 2;
      m.global_tokens = globals;
      expect_gradcheck([=](const V& x) { return ag::attention(x[0], x[1], x[2], m, 0.6); },
                       {randn({1, 2, 7, 3}, 36), randn({1, 2, 7, 3}, 37), randn({1, 2, 7, 3}, 38)});
    }
}

TEST(Gradcheck, CrossEntropy) {
  const Tensor tg = test::ids({2, 0, 5, 0, 1}, {5});
  for (double eps : {0.0, 0.1})
    for (auto red : {ops::Reduction::kMean, ops::Reduction::kSum})
      expect_gradcheck(
          [=](const V& x) { return ag::cross_entropy(x[0], tg, {eps, 0}, red); },
          {randn({5, 7}, 33, 2.0)});
}

TEST(Gradcheck, Views) {
  expect_gradcheck([](const V& x) { return ag::mul(ag::reshape(x[0], {3, 4}), x[1]); },
                   {randn({2, 6}, 34), randn({3, 4}, 35)});
  expect_gradcheck([](const V& x) { return ag::mul(ag::transpose(x[0], 0, 2), x[1]); },
                   {randn({2, 3, 4}, 36), randn({4, 3, 2}, 37)});
}

TEST(Gradcheck, DetectsABrokenBackward) {
  // A deliberately wrong backward (gradient doubled) must be caught.
  auto broken = [](const V& x) {
    Variable out = Variable::from_op(ops::mul(x[0].value(), x[0].value()), ag::should_record({&x[0]}));
    if (out.requires_grad()) {
      Variable a = x[0];
      ag::current_tape()->push([a, out] {
        ag::accumulate_grad(a, ops::affine(ops::mul(out.grad(), a.value()), 4.0));  // true: 2.0
      });
    }
    return out;
  };
  EXPECT_FALSE(ag::gradcheck(broken, {randn({4}, 38)}).ok);
}

}  // namespace
}  // namespace attend
