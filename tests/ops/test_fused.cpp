// Fused ops against the same maths composed from small ops, in values and gradients (double).
#include <gtest/gtest.h>

#include <cmath>

#include "autograd/functions.h"
#include "util.h"

namespace attend {
namespace {

using ag::Variable;
using test::randn;

struct Result {
  Tensor out;
  std::vector<Tensor> grads;
};

/// Runs f on fresh leaves and backpropagates a fixed random seed gradient.
Result run(const std::function<Variable(const std::vector<Variable>&)>& f,
        const std::vector<Tensor>& inputs) {
  std::vector<Variable> vars;
  for (const Tensor& t : inputs) vars.emplace_back(t.clone(), true);
  ag::Tape tape;
  Variable y;
  {
    ag::TapeScope scope(&tape);
    y = f(vars);
  }
  Result r{y.value(), {}};
  tape.backward(y, randn(y.value().shape(), 77));
  for (const Variable& v : vars) r.grads.push_back(v.grad());
  return r;
}

void expect_same(const Result& a, const Result& b) {
  EXPECT_TRUE(test::close(a.out, b.out, 1e-10, 1e-12)) << "values";
  for (size_t i = 0; i < a.grads.size(); ++i)
    EXPECT_TRUE(test::close(a.grads[i], b.grads[i], 1e-9, 1e-11)) << "gradient of input " << i;
}

// y = (s - mean(s)) * rsqrt(var(s) + eps) * gamma + beta, s = x + r, from small ops.
Variable composed_layer_norm(const Variable& x, const Variable& r, const Variable& gamma,
                             const Variable& beta, double eps) {
  const Shape shape = x.shape();
  const int64_t C = shape.back(), R = x.value().numel() / C;
  const Variable s = ag::reshape(ag::add(x, r), {R, C});
  const Variable mean = ag::affine(ag::sum_last(s), 1.0 / C);
  const Variable centred = ag::sub(s, ag::broadcast_last(mean, C));
  const Variable var = ag::affine(ag::sum_last(ag::mul(centred, centred)), 1.0 / C);
  const Variable rstd = ag::rsqrt(ag::affine(var, 1.0, eps));
  const Variable xhat = ag::mul(centred, ag::broadcast_last(rstd, C));
  const Variable gamma_rows = ag::transpose(ag::broadcast_last(gamma, R), 0, 1);
  const Variable y = ag::bias_add(ag::mul(xhat, gamma_rows), beta);
  return ag::reshape(y, shape);
}

TEST(FusedVsComposed, LayerNormWithResidual) {
  const std::vector<Tensor> in = {randn({3, 4, 16}, 1, 3.0), randn({3, 4, 16}, 2), randn({16}, 3),
                                  randn({16}, 4)};
  const Result fused = run([](const std::vector<Variable>& v) {
    return ag::layer_norm(v[0], v[1], v[2], v[3], 1e-5);
  }, in);
  const Result composed = run([](const std::vector<Variable>& v) {
    return composed_layer_norm(v[0], v[1], v[2], v[3], 1e-5);
  }, in);
  expect_same(fused, composed);
}

TEST(FusedVsComposed, Attention) {
  // attention op vs matmul -> masked softmax -> matmul.
  const Tensor lens = test::ids({7, 3}, {2});
  for (bool causal : {false, true}) {
    const ops::AttentionMask m{lens, causal, 0};
    const std::vector<Tensor> in = {randn({2, 3, 7, 8}, 5), randn({2, 3, 7, 8}, 6),
                                    randn({2, 3, 7, 8}, 7)};
    const double scale = 1.0 / std::sqrt(8.0);
    const Result fused = run([&](const std::vector<Variable>& v) {
      return ag::attention(v[0], v[1], v[2], m, scale);
    }, in);
    const Result composed = run([&](const std::vector<Variable>& v) {
      const Variable s = ag::affine(ag::matmul(v[0], v[1], false, true), scale);
      return ag::matmul(ag::softmax(s, m), v[2]);
    }, in);
    expect_same(fused, composed);
  }
}

TEST(FusedVsComposed, LabelSmoothedCrossEntropy) {
  // Fused loss vs -sum(q * log_softmax(x)) / tokens with q = (1-eps) onehot + eps/V.
  const int64_t N = 6, Vn = 9;
  const std::vector<int32_t> targets = {4, 0, 8, 2, 0, 1};  // 0 = padding (ignored)
  const double eps = 0.1;
  Tensor q = Tensor::zeros({N, Vn}, DType::kF64);
  int64_t tokens = 0;
  for (int64_t i = 0; i < N; ++i) {
    if (targets[i] == 0) continue;
    ++tokens;
    for (int64_t j = 0; j < Vn; ++j)
      q.data<double>()[i * Vn + j] = eps / Vn + (j == targets[i] ? 1.0 - eps : 0.0);
  }
  const Tensor tg = test::ids(targets, {N});
  const std::vector<Tensor> in = {randn({N, Vn}, 8, 2.0)};
  const Result fused = run([&](const std::vector<Variable>& v) {
    return ag::cross_entropy(v[0], tg, {eps, 0}, ops::Reduction::kMean);
  }, in);
  const Result composed = run([&](const std::vector<Variable>& v) {
    const Variable nll = ag::sum(ag::mul(ag::log_softmax(v[0]), Variable(q)));
    return ag::affine(nll, -1.0 / static_cast<double>(tokens));
  }, in);
  expect_same(fused, composed);
}

}  // namespace
}  // namespace attend
