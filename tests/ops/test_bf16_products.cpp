// Mixed-precision products (core/context.h, ProductsScope): with bf16 products asked for, f32
// matmul / linear / linear_backward round both operands to bf16 and sum in f32.
//
// Tolerances. bf16 keeps 8 significant bits, so rounding to nearest has unit roundoff
// u = 2^-8: a rounded operand is x(1 + d), |d| <= u. Against the f64 product of the *rounded*
// operands only the f32 summation errs: |error| <= K 2^-24 sum_k |a_k b_k| (the standard bound
// gamma_K for any summation order, oneDNN's blocking included). Against the f64 product of the
// *unrounded* operands each term is off by at most (2u + u^2)|a_k b_k| < 2^-7 |a_k b_k| on top.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "core/context.h"
#include "kernels/cpu/cpu.h"
#include "ops/ops.h"
#include "util.h"

namespace attend {
namespace {

using test::randn;

Tensor rounded(const Tensor& x) { return x.to(DType::kBF16).to(DType::kF64); }

// |got - want| <= rel * mag + K 2^-24 mag elementwise, where mag is the product of |a| and |b|.
void expect_within(const Tensor& got, const Tensor& want, const Tensor& mag, int64_t K, double rel,
                   const char* what) {
  ASSERT_EQ(got.shape(), want.shape()) << what;
  const std::vector<float> g = got.to_vector<float>();
  const std::vector<double> w = want.to(DType::kF64).to_vector<double>(),
                            m = mag.to(DType::kF64).to_vector<double>();
  for (size_t i = 0; i < g.size(); ++i)
    ASSERT_LE(std::abs(g[i] - w[i]), rel * m[i] + K * std::ldexp(m[i], -24) + 1e-30)
        << what << " at " << i << ": " << g[i] << " vs " << w[i];
}

Tensor abs64(const Tensor& x) {
  std::vector<double> v = x.to(DType::kF64).to_vector<double>();
  for (double& e : v) e = std::abs(e);
  return Tensor::from_vector(v, x.shape());
}

// Whether oneDNN has any bf16 matmul on this CPU (AMX, AVX-512 BF16, or AVX-512 emulation).
// Without one, a bf16 product must be an error (never an f32 product passed off as bf16), and
// the tests of the products' values skip.
bool bf16_matmul_available() { return ops::bf16_products_kernel().rfind("none", 0) != 0; }

#define ATTEND_SKIP_WITHOUT_BF16_MATMUL()                                                      \
  do {                                                                                         \
    if (!bf16_matmul_available()) {                                                            \
      ProductsScope bf16(DType::kBF16);                                                        \
      EXPECT_THROW(ops::matmul(randn({2, 8}, 1, 1.0).to(DType::kF32),                          \
                               randn({8, 3}, 2, 1.0).to(DType::kF32)),                         \
                   Error);                                                                     \
      GTEST_SKIP() << "oneDNN has no bf16 matmul on this CPU (" << ops::bf16_products_kernel() \
                   << "); checked that a bf16 product is an error";                            \
    }                                                                                          \
  } while (0)

TEST(Bf16Products, RoundingIsToNearestEvenAsTheScalarRule) {
  std::vector<float> x = {0.f,
                          -0.f,
                          1.f,
                          1.00390625f /* 1 + 2^-8: a tie, to even */,
                          1.01171875f /* 1 + 3 2^-8: a tie, up */,
                          3.4e38f,
                          -3.4e38f,
                          std::numeric_limits<float>::infinity(),
                          -std::numeric_limits<float>::infinity(),
                          std::numeric_limits<float>::quiet_NaN(),
                          std::numeric_limits<float>::denorm_min(),
                          1e-40f};
  const std::vector<float> r = randn({1000}, 3, 10.0).to(DType::kF32).to_vector<float>();
  x.insert(x.end(), r.begin(), r.end());
  std::vector<uint16_t> y(x.size());
  cpu::round_to_bf16(x.data(), y.data(), static_cast<int64_t>(x.size()));
  for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(y[i], to_bf16(x[i]).bits) << i << ": " << x[i];
  EXPECT_EQ(y[3], 0x3f80);  // the tie 1 + 2^-8 rounds to 1 (even)
  EXPECT_EQ(y[4], 0x3f82);  // 1 + 3 2^-8 rounds up to 1 + 2^-6
  EXPECT_TRUE(std::isnan(from_bf16(bf16{y[9]})));
}

TEST(Bf16Products, MatmulSumsTheRoundedOperandsInF32) {
  ATTEND_SKIP_WITHOUT_BF16_MATMUL();
  const int64_t M = 37, N = 29, K = 300;  // none a multiple of a vector or a tile
  for (const bool ta : {false, true})
    for (const bool tb : {false, true})
      for (const int64_t batch : {1, 3})
        for (const bool shared : {false, true}) {
          if (batch == 1 && shared) continue;
          const Shape as = ta ? Shape{batch, K, M} : Shape{batch, M, K};
          const Shape bs2 = tb ? Shape{N, K} : Shape{K, N};
          Shape bs = bs2;
          if (!shared) bs.insert(bs.begin(), batch);
          const Tensor a = randn(as, 11 + batch, 0.7), b = randn(bs, 12 + batch, 1.3);
          const Tensor a32 = a.to(DType::kF32), b32 = b.to(DType::kF32);
          Tensor c;
          {
            ProductsScope bf16_products(DType::kBF16);
            c = ops::matmul(a32, b32, ta, tb);
          }
          const Tensor want_rounded = ops::matmul(rounded(a32), rounded(b32), ta, tb);
          const Tensor want_exact = ops::matmul(a32.to(DType::kF64), b32.to(DType::kF64), ta, tb);
          const Tensor mag = ops::matmul(abs64(a32), abs64(b32), ta, tb);
          expect_within(c, want_rounded, mag, K, 0.0, "against the rounded operands");
          expect_within(c, want_exact, mag, K, std::ldexp(1.0, -7), "against the f32 operands");
          // And the products really were bf16: the f32 product differs by far more than f32
          // rounding somewhere (random operands lose ~2^-9 of each term).
          const std::vector<float> cf = c.to_vector<float>(),
                                   f32 = ops::matmul(a32, b32, ta, tb).to_vector<float>();
          const std::vector<double> mv = mag.to_vector<double>();
          double worst = 0;
          for (size_t i = 0; i < cf.size(); ++i)
            worst = std::max(worst, std::abs(cf[i] - f32[i]) / mv[i]);
          EXPECT_GT(worst, std::ldexp(1.0, -14)) << "ta " << ta << " tb " << tb;
        }
}

TEST(Bf16Products, KernelScalesAccumulatesAndKeepsStridedOutputs) {
  ATTEND_SKIP_WITHOUT_BF16_MATMUL();
  // C = alpha op(A) op(B) + beta C on a C with leading dimension > N and a batch stride with a
  // gap, as attention's scaled products and accumulated gradients call it; the padding between
  // rows and matrices must stay untouched.
  // A is strided too (lda > K, a gap between matrices): its rows are rounded one by one.
  const int64_t M = 19, N = 23, K = 40, ldc = 31, sc = M * ldc + 5, batch = 2;
  const int64_t lda = K + 3, sa = M * lda + 2;
  const std::vector<double> av = randn({batch * sa}, 41).to_vector<double>(),
                            bv = randn({batch, N, K}, 42).to_vector<double>();
  std::vector<float> a(av.begin(), av.end()), b(bv.begin(), bv.end());
  for (const auto& [alpha, beta] :
       std::vector<std::pair<float, float>>{{1.f, 0.f}, {0.125f, 0.f}, {1.f, 1.f}, {-0.5f, 2.f}}) {
    std::vector<float> c(static_cast<size_t>(batch * sc), 7.f);
    cpu::gemm_bf16_batched(false, true, M, N, K, alpha, a.data(), lda, sa, b.data(), K, N * K, beta,
                           c.data(), ldc, sc, batch);
    for (int64_t i = 0; i < batch; ++i)
      for (int64_t r = 0; r < M; ++r)
        for (int64_t j = 0; j < ldc; ++j) {
          const float got = c[static_cast<size_t>(i * sc + r * ldc + j)];
          if (j >= N) {
            ASSERT_EQ(got, 7.f) << "padding written at " << i << "," << r << "," << j;
            continue;
          }
          double want = 0, mag = 0;
          for (int64_t k = 0; k < K; ++k) {
            const double x = from_bf16(to_bf16(a[static_cast<size_t>(i * sa + r * lda + k)])),
                         y = from_bf16(to_bf16(b[static_cast<size_t>((i * N + j) * K + k)]));
            want += x * y;
            mag += std::abs(x * y);
          }
          want = alpha * want + beta * 7.0;
          // the f32 sum's bound, scaled by |alpha|, plus the rounding of the final axpy
          const double tol =
              std::abs(alpha) * K * std::ldexp(mag, -24) + std::ldexp(std::abs(want), -22) + 1e-30;
          ASSERT_LE(std::abs(got - want), tol) << "alpha " << alpha << " beta " << beta;
        }
    for (int64_t i = 0; i < batch; ++i)  // the gap after each matrix
      for (int64_t g = M * ldc; g < sc; ++g)
        ASSERT_EQ(c[static_cast<size_t>(i * sc + g)], 7.f) << "gap written at " << i << "," << g;
  }
}

TEST(Bf16Products, LinearAndItsGradientsUseBf16ProductsOnlyInsideTheScope) {
  ATTEND_SKIP_WITHOUT_BF16_MATMUL();
  const int64_t R = 70, K = 96, N = 50;
  const Tensor x = randn({2, R / 2, K}, 21).to(DType::kF32),
               w = randn({N, K}, 22, 0.2).to(DType::kF32);
  const Tensor bias = randn({N}, 23).to(DType::kF32), dy = randn({2, R / 2, N}, 24).to(DType::kF32);
  Tensor y;
  ops::LinearGrads g;
  {
    ProductsScope bf16_products(DType::kBF16);
    y = ops::linear(x, w, bias);
    g = ops::linear_backward(dy, x, w, true);
  }
  const Tensor x2 = x.reshape({R, K}), dy2 = dy.reshape({R, N});
  // y = x w^T + bias; dx = dy w; dw = dy^T x; dbias = the row sums of dy (no product: f32).
  const Tensor y_want = ops::linear(rounded(x2), rounded(w), bias.to(DType::kF64));
  expect_within(y.reshape({R, N}), y_want, ops::matmul(abs64(x2), abs64(w), false, true), K, 0.0,
                "y");
  expect_within(g.dx.reshape({R, K}), ops::matmul(rounded(dy2), rounded(w)),
                ops::matmul(abs64(dy2), abs64(w)), N, 0.0, "dx");
  expect_within(g.dw, ops::matmul(rounded(dy2), rounded(x2), true, false),
                ops::matmul(abs64(dy2), abs64(x2), true, false), R, 0.0, "dw");
  const ops::LinearGrads f32 = ops::linear_backward(dy, x, w, true);
  EXPECT_EQ(g.dbias.to_vector<float>(), f32.dbias.to_vector<float>());
  // Outside the scope the products are f32 again, bit for bit what they were before.
  EXPECT_EQ(current_context().products, DType::kF32);
  const Tensor again = ops::linear(x, w, bias);
  EXPECT_NE(again.to_vector<float>(), y.to_vector<float>());
  EXPECT_EQ(again.to_vector<float>(), ops::linear(x, w, bias).to_vector<float>());
}

TEST(Bf16Products, OnlyF32AndBf16AreProductPrecisions) {
  EXPECT_THROW(ProductsScope(DType::kF64), Error);
  EXPECT_THROW(ProductsScope(DType::kI8), Error);
  EXPECT_EQ(current_context().products, DType::kF32);
  // A f64 product is not touched by the scope (the reference stays the reference).
  const Tensor a = randn({5, 7}, 31), b = randn({7, 3}, 32);
  const std::vector<double> before = ops::matmul(a, b).to_vector<double>();
  ProductsScope bf16_products(DType::kBF16);
  EXPECT_EQ(ops::matmul(a, b).to_vector<double>(), before);
  EXPECT_FALSE(cpu::bf16_product_kernel().empty());
}

}  // namespace
}  // namespace attend
