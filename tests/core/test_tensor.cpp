// Tensor views, copies, dtype conversions and shape errors.
#include <gtest/gtest.h>

#include "core/device.h"
#include "core/tensor.h"
#include "util.h"

namespace attend {
namespace {

TEST(Tensor, ReshapeOfContiguousIsAView) {
  Tensor t = Tensor::from_vector<float>({0, 1, 2, 3, 4, 5}, {2, 3});
  Tensor r = t.reshape({3, -1});
  EXPECT_EQ(r.shape(), Shape({3, 2}));
  EXPECT_TRUE(r.shares_storage(t));
  r.data<float>()[0] = 42;
  EXPECT_EQ(t.data<float>()[0], 42);
}

TEST(Tensor, TransposeIsAViewAndContiguousCopies) {
  Tensor t = Tensor::from_vector<float>({0, 1, 2, 3, 4, 5}, {2, 3});
  Tensor tt = t.transpose(0, 1);
  EXPECT_EQ(tt.shape(), Shape({3, 2}));
  EXPECT_TRUE(tt.shares_storage(t));
  EXPECT_FALSE(tt.is_contiguous());
  Tensor c = tt.contiguous();
  EXPECT_FALSE(c.shares_storage(t));
  EXPECT_EQ(c.to_vector<float>(), std::vector<float>({0, 3, 1, 4, 2, 5}));
  // Reshape of a non-contiguous view copies and keeps the logical order.
  EXPECT_EQ(tt.reshape({6}).to_vector<float>(), std::vector<float>({0, 3, 1, 4, 2, 5}));
}

TEST(Tensor, SizeOneDimensionsDoNotBreakContiguity) {
  // [B, 1, H, Dh] -> [B, H, 1, Dh] (one decoding step's heads): same order in memory, no copy.
  Tensor t = Tensor::from_vector<float>({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, {2, 1, 3, 2});
  Tensor tt = t.transpose(1, 2);
  EXPECT_EQ(tt.shape(), Shape({2, 3, 1, 2}));
  EXPECT_TRUE(tt.is_contiguous());
  EXPECT_TRUE(tt.contiguous().shares_storage(t));
  EXPECT_EQ(tt.reshape({2, 6}).to_vector<float>(), t.to_vector<float>());
  // A dimension of size 1 does not hide a real transpose elsewhere.
  Tensor u = Tensor::zeros({2, 1, 3}).transpose(0, 2);
  EXPECT_FALSE(u.is_contiguous());
  // A slice of one row of a transposed matrix is strided, a slice of one column of it is not.
  Tensor m = Tensor::from_vector<float>({0, 1, 2, 3, 4, 5}, {2, 3}).transpose(0, 1);  // [3, 2]
  EXPECT_FALSE(m.slice(0, 0, 1).is_contiguous());
  EXPECT_EQ(m.slice(0, 0, 1).contiguous().to_vector<float>(), std::vector<float>({0, 3}));
  EXPECT_TRUE(m.slice(1, 1, 2).is_contiguous());
  EXPECT_EQ(m.slice(1, 1, 2).to_vector<float>(), std::vector<float>({3, 4, 5}));
}

TEST(Tensor, SliceUsesOffset) {
  Tensor t = Tensor::from_vector<int32_t>({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, {3, 4});
  Tensor rows = t.slice(0, 1, 3);
  EXPECT_TRUE(rows.shares_storage(t));
  EXPECT_TRUE(rows.is_contiguous());
  EXPECT_EQ(rows.offset(), 4);
  EXPECT_EQ(rows.to_vector<int32_t>(), std::vector<int32_t>({4, 5, 6, 7, 8, 9, 10, 11}));
  Tensor cols = t.slice(1, 1, 3);
  EXPECT_FALSE(cols.is_contiguous());
  EXPECT_EQ(cols.to_vector<int32_t>(), std::vector<int32_t>({1, 2, 5, 6, 9, 10}));
  Tensor four = Tensor::zeros({2, 3, 4});
  EXPECT_EQ(four.transpose(0, 2).slice(0, 1, 2).shape(), Shape({1, 3, 2}));
}

TEST(Tensor, ScalarAndEmptyShapes) {
  Tensor s = Tensor::full({}, 3.5, DType::kF64);
  EXPECT_EQ(s.numel(), 1);
  EXPECT_EQ(s.item(), 3.5);
  Tensor e = Tensor::zeros({0, 4});
  EXPECT_EQ(e.numel(), 0);
  EXPECT_EQ(e.reshape({4, 0}).shape(), Shape({4, 0}));
}

TEST(Tensor, DtypeConversions) {
  const std::vector<double> v = {0.0, 1.0, -2.5, 3.140625, 65504.0, 1e-6, -1e-3};
  Tensor d = Tensor::from_vector(v, {7});
  // f32 round trip is exact for these values after the f32 rounding.
  EXPECT_EQ(d.to(DType::kF32).to(DType::kF64).to_vector<double>()[3], 3.140625);
  // bf16 keeps 8 significant bits: relative error <= 2^-8.
  const auto b = d.to(DType::kBF16).to(DType::kF64).to_vector<double>();
  for (size_t i = 0; i < v.size(); ++i) EXPECT_NEAR(b[i], v[i], std::abs(v[i]) * 0x1p-8);
  // f16 keeps 11 bits; 65504 is its largest finite value; 1e-6 is subnormal.
  const auto h = d.to(DType::kF16).to(DType::kF64).to_vector<double>();
  for (size_t i = 0; i < v.size(); ++i) EXPECT_NEAR(h[i], v[i], std::abs(v[i]) * 0x1p-11 + 0x1p-25);
  EXPECT_EQ(h[4], 65504.0);
  EXPECT_TRUE(std::isinf(from_f16(to_f16(70000.f))));
  EXPECT_TRUE(std::isnan(from_bf16(to_bf16(NAN))));
  // i32 ids convert to float; to f64 exactly, also beyond float's 24-bit mantissa.
  EXPECT_EQ(Tensor::from_vector<int32_t>({7, -3}, {2}).to(DType::kF32).to_vector<float>(),
            std::vector<float>({7.f, -3.f}));
  EXPECT_EQ(Tensor::from_vector<int32_t>({16777217, -2147483647}, {2}).to(DType::kF64).to_vector<double>(),
            std::vector<double>({16777217.0, -2147483647.0}));
}

TEST(Tensor, RoundToNearestEvenBf16) {
  // 1 + 2^-8 is exactly between two bf16 values (1 and 1 + 2^-7): ties go to even (1).
  EXPECT_EQ(from_bf16(to_bf16(1.0f + 0x1p-8f)), 1.0f);
  EXPECT_EQ(from_bf16(to_bf16(1.0f + 3 * 0x1p-8f)), 1.0f + 0x1p-6f);
}

TEST(Tensor, ShapeErrorsNameTheShapes) {
  Tensor t = Tensor::zeros({2, 3});
  EXPECT_TRUE(test::throws_with([&] { t.reshape({4, 2}); }, {"reshape", "[2, 3]", "[4, 2]"}));
  EXPECT_TRUE(test::throws_with([&] { t.transpose(0, 2); }, {"transpose", "[2, 3]"}));
  EXPECT_TRUE(test::throws_with([&] { t.slice(1, 2, 5); }, {"slice", "[2, 5)"}));
  EXPECT_TRUE(test::throws_with([&] { t.data<double>(); }, {"f64", "f32"}));
  EXPECT_TRUE(test::throws_with([&] { Tensor::empty({2, -1}); }, {"negative"}));
  EXPECT_TRUE(test::throws_with([&] { t.item(); }, {"item", "6 elements"}));
}

TEST(Tensor, CudaWithoutBackendIsAClearError) {
  if (built_with_cuda()) GTEST_SKIP() << "this build has CUDA";
  Tensor t = Tensor::zeros({2});
  EXPECT_TRUE(test::throws_with([&] { t.to(Device::cuda(0)); }, {"CUDA"}));
}

}  // namespace
}  // namespace attend
