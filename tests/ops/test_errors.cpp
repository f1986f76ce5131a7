// Shape, dtype and device mismatches raise attend::Error naming the op and the shapes.
#include <gtest/gtest.h>

#include <map>

#include "core/profile.h"
#include "ops/dispatch.h"
#include "ops/ops.h"
#include "util.h"

namespace attend {
namespace {

using test::throws_with;

TEST(OpErrors, MatmulShapes) {
  const Tensor a = Tensor::zeros({2, 3, 4}), b = Tensor::zeros({2, 5, 6});
  EXPECT_TRUE(throws_with([&] { ops::matmul(a, b); }, {"matmul", "[2, 3, 4]", "[2, 5, 6]"}));
  EXPECT_TRUE(throws_with([&] { ops::matmul(a, Tensor::zeros({3, 4, 6})); }, {"matmul", "batch"}));
  EXPECT_TRUE(throws_with([&] { ops::matmul(Tensor::zeros({4}), a); }, {"matmul", "[4]"}));
}

TEST(OpErrors, DtypeMismatch) {
  const Tensor a = Tensor::zeros({3}), b = Tensor::zeros({3}, DType::kF64);
  EXPECT_TRUE(throws_with([&] { ops::add(a, b); }, {"add", "f32[3]", "f64[3]"}));
  EXPECT_TRUE(throws_with([&] { ops::relu(Tensor::zeros({3}, DType::kI32)); }, {"relu", "i32"}));
  EXPECT_TRUE(throws_with([&] { ops::relu(Tensor::zeros({3}, DType::kBF16)); }, {"relu", "bf16"}));
}

// Every op dispatches through ops::detail::dispatch: the cell of the tensor's (device, dtype)
// runs, and a cell without a kernel is an error naming the op, the device and the dtype.
TEST(OpDispatch, RunsTheTensorsCellAndNamesAMissingOne) {
  int ran = 0;
  // Cells refer to their callables: the lambdas must outlive the dispatch call.
  auto f32 = [&] { ran = 32; };
  auto f64 = [&] { ran = 64; };
  const ops::detail::Cells cells{.cpu_f32 = f32, .cpu_f64 = f64};
  ops::detail::dispatch("probe", Tensor::zeros({2}), cells);
  EXPECT_EQ(ran, 32);
  ops::detail::dispatch("probe", Tensor::zeros({2}, DType::kF64), cells);
  EXPECT_EQ(ran, 64);
  ran = 0;
  EXPECT_TRUE(
      throws_with([&] { ops::detail::dispatch("probe", Tensor::zeros({2}, DType::kBF16), cells); },
                  {"probe", "not implemented", "cpu", "bf16"}));
  EXPECT_EQ(ran, 0);
  // A real op without an f64 kernel.
  EXPECT_TRUE(throws_with(
      [&] {
        ops::top_k(Tensor::zeros({2, 5}, DType::kF64), 2);
      },
      {"top_k", "not implemented", "f64"}));
}

TEST(OpDispatch, ProfilingTimesEveryKernelCallByOpName) {
  const Tensor x = Tensor::from_vector(std::vector<float>{-1, 2, -3, 4}, {4});
  set_op_profiling(true);
  ops::relu(x);
  ops::relu(x);
  ops::relu_backward(x, x);
  set_op_profiling(false);
  ops::relu(x);  // not counted: profiling is off
  std::map<std::string, int64_t> calls;
  for (const OpTime& t : op_times()) {
    calls[t.op] = t.calls;
    EXPECT_GE(t.seconds, 0.0) << t.op;
  }
  EXPECT_EQ(calls["relu"], 2);
  EXPECT_EQ(calls["relu_backward"], 1);
  EXPECT_EQ(calls.size(), 2u);
  set_op_profiling(true);  // starting again clears the totals
  set_op_profiling(false);
  EXPECT_TRUE(op_times().empty());
}

TEST(OpErrors, DeviceMismatchOrUnsupported) {
  // A CUDA tensor cannot be created without a device; the dispatch error is checked on the
  // GPU test. Here: an op given integer ids on the wrong argument.
  EXPECT_TRUE(throws_with(
      [&] {
        ops::embedding(Tensor::zeros({2}), Tensor::zeros({5, 3}));
      },
      {"embedding", "ids", "i32", "f32[2]"}));
}

TEST(OpErrors, LinearAndLayerNormShapes) {
  EXPECT_TRUE(throws_with(
      [&] {
        ops::linear(Tensor::zeros({2, 7}), Tensor::zeros({4, 8}), {});
      },
      {"linear", "[2, 7]", "[4, 8]"}));
  EXPECT_TRUE(throws_with(
      [&] {
        ops::layer_norm(Tensor::zeros({2, 8}), {}, Tensor::zeros({6}), Tensor::zeros({6}));
      },
      {"layer_norm", "[6]", "[2, 8]"}));
  EXPECT_TRUE(throws_with(
      [&] {
        ops::layer_norm(Tensor::zeros({2, 8}), Tensor::zeros({2, 7}), Tensor::zeros({8}),
                        Tensor::zeros({8}));
      },
      {"layer_norm", "[2, 8]", "[2, 7]"}));
}

TEST(OpErrors, AttentionShapesAndMasks) {
  const Tensor q = Tensor::zeros({2, 4, 5, 8}), k = Tensor::zeros({2, 4, 6, 8});
  EXPECT_TRUE(throws_with(
      [&] {
        ops::attention(q, k, Tensor::zeros({2, 4, 6, 7}), {}, 1.0);
      },
      {"attention", "[2, 4, 6, 8]", "[2, 4, 6, 7]"}));
  EXPECT_TRUE(throws_with(
      [&] {
        ops::attention(q, Tensor::zeros({2, 4, 6, 16}), Tensor::zeros({2, 4, 6, 16}), {}, 1.0);
      },
      {"attention", "head width"}));
  ops::AttentionMask bad{test::ids({6, 6, 6}, {3}), false, 0};
  EXPECT_TRUE(throws_with([&] { ops::attention(q, k, k, bad, 1.0); },
                          {"attention", "key_lengths", "[2]", "[3]"}));
  ops::AttentionMask too_long{test::ids({6, 9}, {2}), false, 0};
  EXPECT_TRUE(throws_with([&] { ops::attention(q, k, k, too_long, 1.0); },
                          {"key_lengths[1] = 9", "[0, 6]"}));
  EXPECT_TRUE(throws_with(
      [&] {
        ops::softmax(Tensor::zeros({4, 5}), too_long);
      },
      {"softmax", "[B, H, Tq, Tk]", "[4, 5]"}));
}

TEST(OpErrors, IdsAndTargetsOutOfRange) {
  EXPECT_TRUE(throws_with(
      [&] {
        ops::embedding(test::ids({1, 5}, {2}), Tensor::zeros({5, 3}));
      },
      {"embedding", "id 5", "position 1", "[0, 5)"}));
  EXPECT_TRUE(throws_with(
      [&] {
        ops::cross_entropy(Tensor::zeros({2, 4}), test::ids({1, 4}, {2}), {0.1, -1},
                           ops::Reduction::kMean);
      },
      {"cross_entropy", "target 4", "position 1"}));
  EXPECT_TRUE(throws_with(
      [&] {
        ops::cross_entropy(Tensor::zeros({2, 4}), test::ids({1}, {1}), {0.1, -1},
                           ops::Reduction::kMean);
      },
      {"cross_entropy", "[1]", "[2, 4]"}));
}

TEST(OpErrors, BadScalars) {
  EXPECT_TRUE(
      throws_with([&] { ops::dropout(Tensor::zeros({3}), 1.0, 0, 0); }, {"dropout", "[0, 1)"}));
  Tensor p = Tensor::zeros({3}), m = Tensor::zeros({3}), v = Tensor::zeros({4});
  EXPECT_TRUE(throws_with([&] { ops::adam_update(p, Tensor::zeros({3}), m, v, {}, 1); },
                          {"adam_update", "[3]", "[4]"}));
}

}  // namespace
}  // namespace attend
