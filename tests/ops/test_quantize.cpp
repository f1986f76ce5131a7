// Per-row int8 quantization (the i8 dtype's use: quantized weights with per-row f32 scales):
// the error bound, the extremes, zero rows, errors for non-finite values and mismatched
// scales, and i8 tensors' conversions.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <tuple>
#include <vector>

#include "kernels/cpu/cpu.h"
#include "kernels/ref/ref.h"
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

// The int8 product: both CPU paths (the streaming kernel for few rows, oneDNN beyond) give the
// reference's exact int32 sums, scaled; shapes cover K and N tails and the extremes +-127.
TEST(Quantize, Int8GemmMatchesReference) {
  for (const auto& [M, N, K] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{{1, 7, 5},
                                                                                  {2, 8, 32},
                                                                                  {3, 13, 70},
                                                                                  {4, 64, 512},
                                                                                  {47, 33, 96},
                                                                                  {48, 9, 64},
                                                                                  {49, 10, 65},
                                                                                  {130, 67, 200}}) {
    const Tensor a = test::randn({M, K}, 7 + M, 60.0).to(DType::kF32),
                 w = test::randn({N, K}, 9 + N, 60.0).to(DType::kF32);
    std::vector<int8_t> qa(static_cast<size_t>(M * K)), qw(static_cast<size_t>(N * K));
    const auto av = a.to_vector<float>(), wv = w.to_vector<float>();
    for (size_t i = 0; i < qa.size(); ++i)
      qa[i] = static_cast<int8_t>(std::clamp(std::nearbyint(av[i]), -127.f, 127.f));
    for (size_t i = 0; i < qw.size(); ++i)
      qw[i] = static_cast<int8_t>(std::clamp(std::nearbyint(wv[i]), -127.f, 127.f));
    qa[0] = -127;
    qw[0] = -127;
    if (K > 1) qa[1] = qw[1] = 127;
    std::vector<float> sa(static_cast<size_t>(M)), sw(static_cast<size_t>(N)),
        bias(static_cast<size_t>(N));
    for (int64_t m = 0; m < M; ++m) sa[static_cast<size_t>(m)] = 0.01f * static_cast<float>(m + 1);
    for (int64_t n = 0; n < N; ++n) {
      sw[static_cast<size_t>(n)] = 0.002f * static_cast<float>(n % 5 + 1);
      bias[static_cast<size_t>(n)] = 0.5f * static_cast<float>(n % 3) - 0.5f;
    }
    std::vector<float> want(static_cast<size_t>(M * N)), got(want.size());
    for (const float* b : std::vector<const float*>{nullptr, bias.data()}) {
      ref::gemm_int8(M, N, K, qa.data(), sa.data(), qw.data(), sw.data(), b, want.data());
      cpu::gemm_int8(M, N, K, qa.data(), sa.data(), qw.data(), sw.data(), b, got.data());
      for (size_t i = 0; i < want.size(); ++i)  // the sums are exact; scaling rounds twice
        ASSERT_NEAR(got[i], want[i], 4e-7 * std::abs(want[i]) + 1e-6)
            << "M " << M << " N " << N << " K " << K << " at " << i;
    }
  }
}

// linear_int8 against the f64 product of the unquantized values, within the bound derived
// from the two half-step rounding errors (ops.h): |x.w - qx sx . qw sw| <=
// (sw/2) sum|x| + (sx/2) sum|w| + K sx sw / 4 (plus f32 rounding of the result).
TEST(Quantize, Int8LinearWithinDerivedBound) {
  const int64_t K = 96, N = 37;
  for (const int64_t M : {int64_t{1}, int64_t{5}, int64_t{80}}) {
    const Tensor x = test::randn({M, K}, 100 + M, 1.0).to(DType::kF32),
                 w = test::randn({N, K}, 3, 0.1).to(DType::kF32);
    const Tensor bias = test::randn({N}, 4, 0.1).to(DType::kF32);
    const ops::QuantizedRows qw = ops::quantize_rows(w), qx = ops::quantize_rows(x);
    const Tensor y = ops::linear_int8(x, qw.q, qw.scales, bias);
    ASSERT_EQ(y.shape(), (Shape{M, N}));
    const auto xv = x.to_vector<float>(), wv = w.to_vector<float>(), yv = y.to_vector<float>();
    const auto bv = bias.to_vector<float>(), sw = qw.scales.to_vector<float>();
    const auto sx = qx.scales.to_vector<float>();
    double worst = 0;  // the largest error as a fraction of its bound
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        double exact = bv[static_cast<size_t>(n)], ax = 0, aw = 0;
        for (int64_t k = 0; k < K; ++k) {
          const double xi = xv[static_cast<size_t>(m * K + k)],
                       wi = wv[static_cast<size_t>(n * K + k)];
          exact += xi * wi;
          ax += std::abs(xi);
          aw += std::abs(wi);
        }
        const double s_x = sx[static_cast<size_t>(m)], s_w = sw[static_cast<size_t>(n)];
        const double bound =
            s_w / 2 * ax + s_x / 2 * aw + K * s_x * s_w / 4 + 1e-6 * (std::abs(exact) + 1);
        const double err = std::abs(yv[static_cast<size_t>(m * N + n)] - exact);
        ASSERT_LE(err, bound) << "row " << m << " column " << n;
        worst = std::max(worst, err / bound);
      }
    // Not vacuous: the rounding errors show, well inside the worst case.
    EXPECT_GT(worst, 0.001);
  }
}

TEST(Quantize, Int8LinearRefusesBadOperands) {
  const Tensor x = test::randn({2, 8}, 1).to(DType::kF32),
               w = test::randn({4, 8}, 2).to(DType::kF32);
  const ops::QuantizedRows q = ops::quantize_rows(w);
  EXPECT_NE(test::error_of([&] { ops::linear_int8(x, w, q.scales); }).find("weight"),
            std::string::npos);
  EXPECT_NE(test::error_of([&] {
              ops::linear_int8(x, q.q, q.scales.slice(0, 0, 3));
            }).find("one scale per row"),
            std::string::npos);
  EXPECT_NE(test::error_of([&] {
              ops::linear_int8(test::randn({2, 7}, 1).to(DType::kF32), q.q, q.scales);
            }).find("does not match weight"),
            std::string::npos);
  Tensor bad = x.clone();
  bad.data<float>()[9] = std::nanf("");
  EXPECT_NE(test::error_of([&] { ops::linear_int8(bad, q.q, q.scales); }).find("row 1"),
            std::string::npos);
}

}  // namespace
}  // namespace attend
