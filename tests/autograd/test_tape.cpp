// The tape and the gradient-accumulation rule.
#include <gtest/gtest.h>

#include "autograd/functions.h"
#include "util.h"

namespace attend {
namespace {

using ag::Variable;

TEST(Tape, FanOutSumsGradientsWithoutAliasing) {
  // y = x * x + x, as a graph where x feeds three uses: dy/dx = 2x + 1.
  Variable x(Tensor::from_vector<double>({1.0, -2.0, 3.0}, {3}), true);
  ag::Tape tape;
  Variable y;
  {
    ag::TapeScope scope(&tape);
    y = ag::sum(ag::add(ag::mul(x, x), x));
  }
  EXPECT_EQ(tape.size(), 3u);
  tape.backward(y);
  EXPECT_EQ(tape.size(), 0u);
  EXPECT_EQ(x.grad().to_vector<double>(), std::vector<double>({3.0, -3.0, 7.0}));
}

TEST(Tape, ParameterGradientsAccumulateAcrossMicroBatches) {
  Variable w(Tensor::from_vector<double>({2.0}, {1}), true, "w");
  w.zero_grad();
  for (double xv : {1.0, 3.0}) {  // two micro-batches: d(w*x)/dw = x
    Variable x(Tensor::from_vector<double>({xv}, {1}));
    ag::Tape tape;
    Variable y;
    {
      ag::TapeScope scope(&tape);
      y = ag::sum(ag::mul(w, x));
    }
    tape.backward(y);
  }
  EXPECT_EQ(w.grad().to_vector<double>()[0], 4.0);
  w.zero_grad();
  EXPECT_EQ(w.grad().to_vector<double>()[0], 0.0);
}

TEST(Tape, NothingIsRecordedWithoutAScopeOrGradients) {
  Variable x(Tensor::from_vector<double>({1.0}, {1}), true);
  Variable c(Tensor::from_vector<double>({1.0}, {1}), false);
  EXPECT_FALSE(ag::add(x, x).requires_grad());  // no tape: inference mode
  ag::Tape tape;
  {
    ag::TapeScope scope(&tape);
    EXPECT_FALSE(ag::add(c, c).requires_grad());
    EXPECT_TRUE(ag::add(x, c).requires_grad());
  }
  EXPECT_EQ(tape.size(), 1u);
}

TEST(Tape, BackwardNeedsAScalarOrASeed) {
  Variable x(Tensor::from_vector<double>({1.0, 2.0}, {2}), true);
  ag::Tape tape;
  Variable y;
  {
    ag::TapeScope scope(&tape);
    y = ag::affine(x, 2.0);
  }
  EXPECT_TRUE(test::throws_with([&] { tape.backward(y); }, {"not a scalar"}));
}

TEST(Tape, EmbeddingGradientIsSparse) {
  Variable w(Tensor::zeros({5, 2}, DType::kF64), true);
  w.zero_grad();
  ag::Tape tape;
  Variable y;
  {
    ag::TapeScope scope(&tape);
    y = ag::sum(ag::embedding(test::ids({3, 1, 3}, {3}), w));
  }
  tape.backward(y);
  EXPECT_EQ(w.grad().to_vector<double>(),
            std::vector<double>({0, 0, 1, 1, 0, 0, 2, 2, 0, 0}));
}

}  // namespace
}  // namespace attend
