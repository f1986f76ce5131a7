// Per-row int8 quantization (the i8 dtype's use: quantized weights with per-row f32 scales):
// the error bound, the extremes, zero rows, errors for non-finite values and mismatched
// scales, and i8 tensors' conversions.
#include <gtest/gtest.h>

#include <cmath>

#include "ops/ops.h"
#include "util.h"

namespace attend {
namespace {

TEST(Quantize, RoundTripWithinHalfAStep) {
  for (const DType dt : {DType::kF32, DType::kF64}) {
    Tensor x = test::randn({4, 7, 65}, 40, 3.0).to(dt);
    const ops::QuantizedRows qr = ops::quantize_rows(x);
    ASSERT_EQ(qr.q.dtype(), DType::kI8);
    ASSERT_EQ(qr.q.shape(), x.shape());
    ASSERT_EQ(qr.scales.shape(), (Shape{4, 7}));
    const Tensor y = ops::dequantize_rows(qr.q, qr.scales).to(DType::kF64);
    const auto xs = x.to(DType::kF64).to_vector<double>(), ys = y.to_vector<double>();
    const auto s = qr.scales.to(DType::kF64).to_vector<double>();
    const auto q = qr.q.to_vector<int8_t>();
    for (int64_t r = 0; r < 28; ++r) {
      double m = 0;
      int top = 0;
      for (int64_t c = 0; c < 65; ++c) {
        const size_t i = static_cast<size_t>(r * 65 + c);
        m = std::max(m, std::abs(xs[i]));
        EXPECT_LE(std::abs(ys[i] - xs[i]), s[r] / 2 * (1 + 1e-6)) << r << "," << c;
        EXPECT_GE(q[i], -127);
        top = std::max(top, std::abs(static_cast<int>(q[i])));
      }
      EXPECT_NEAR(s[r], m / 127, m * 1e-7);
      EXPECT_EQ(top, 127) << "row " << r << ": its largest value maps to +-127";
    }
  }
}

TEST(Quantize, ZeroRowsAndExactLevels) {
  const Tensor x = Tensor::from_vector<float>({0, 0, 0, 127, -63.5f, 1}, {2, 3});
  const ops::QuantizedRows qr = ops::quantize_rows(x);
  EXPECT_EQ(qr.scales.to_vector<float>(), (std::vector<float>{0, 1}));
  // -63.5 rounds to the even level -64; a zero row stays zero.
  EXPECT_EQ(qr.q.to_vector<int8_t>(), (std::vector<int8_t>{0, 0, 0, 127, -64, 1}));
  EXPECT_EQ(ops::dequantize_rows(qr.q, qr.scales).to_vector<float>(),
            (std::vector<float>{0, 0, 0, 127, -64, 1}));
}

TEST(Quantize, BadInputIsAClearError) {
  Tensor x = Tensor::zeros({3, 4});
  x.data<float>()[9] = INFINITY;
  EXPECT_TRUE(test::throws_with([&] { ops::quantize_rows(x); },
                                {"quantize_rows", "row 2", "infinite or NaN"}));
  x.data<float>()[9] = NAN;
  EXPECT_TRUE(test::throws_with([&] { ops::quantize_rows(x); }, {"row 2"}));
  EXPECT_TRUE(test::throws_with([] { ops::quantize_rows(Tensor::zeros({3}, DType::kI32)); },
                                {"quantize_rows"}));
  const ops::QuantizedRows qr = ops::quantize_rows(Tensor::full({3, 4}, 1.0));
  EXPECT_TRUE(test::throws_with([&] { ops::dequantize_rows(qr.q, Tensor::zeros({2})); },
                                {"dequantize_rows", "one scale per row"}));
  EXPECT_TRUE(test::throws_with([&] { ops::dequantize_rows(qr.scales, qr.scales); },
                                {"dequantize_rows", "q"}));
}

TEST(Quantize, I8TensorsConvertOnlyIntegers) {
  const Tensor t = Tensor::from_vector<float>({-128, 0, 127}, {3});
  EXPECT_EQ(t.to(DType::kI8).to_vector<int8_t>(), (std::vector<int8_t>{-128, 0, 127}));
  EXPECT_EQ(t.to(DType::kI8).to(DType::kF32).to_vector<float>(), t.to_vector<float>());
  EXPECT_TRUE(test::throws_with([] { Tensor::full({2}, 3.5).to(DType::kI8); },
                                {"to(i8)", "3.5", "quantize_rows"}));
  EXPECT_TRUE(test::throws_with([] { Tensor::full({2}, 200).to(DType::kI8); }, {"200"}));
  EXPECT_EQ(t.to(DType::kI8).str(), "i8[3] cpu");
}

}  // namespace
}  // namespace attend
