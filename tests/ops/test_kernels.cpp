// CPU kernel checks the op table (test_op_table.cpp) cannot express: identities between ops,
// closed forms, the two GEMM libraries against each other, and the decoding GEMM paths over
// many shapes and leading dimensions against double sums.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>

#include "kernels/cpu/cpu.h"
#include "kernels/cpu/gemm_small.h"
#include "ops/ops.h"
#include "util.h"

namespace attend {
namespace {

using test::randn;
TEST(CpuKernels, LogSumExpIsWhatLogSoftmaxSubtracts) {
  const Tensor x = randn({3, 5, 1000}, 41, 4.0);
  const Tensor x32 = x.to(DType::kF32), lse = ops::logsumexp(x32), lp = ops::log_softmax(x32);
  ASSERT_EQ(lse.shape(), (Shape{3, 5}));
  const std::vector<float> xv = x32.to_vector<float>(), lv = lse.to_vector<float>(),
                           pv = lp.to_vector<float>();
  for (size_t i = 0; i < xv.size(); ++i) ASSERT_EQ(xv[i] - lv[i / 1000], pv[i]) << i;
  EXPECT_THROW(ops::logsumexp(Tensor::zeros({4, 0})), Error);
}

TEST(CpuKernels, AdamMatchesTheClosedFormFirstStep) {
  // After one step from zero moments, mhat = g and vhat = g^2: p -= lr * g / (|g| + eps).
  Tensor p = Tensor::from_vector<float>({1.f, -2.f}, {2});
  const Tensor g = Tensor::from_vector<float>({0.5f, -4.f}, {2});
  Tensor m = Tensor::zeros({2}), v = Tensor::zeros({2});
  ops::adam_update(p, g, m, v, {0.1, 0.9, 0.98, 1e-9, 0.0}, 1);
  EXPECT_NEAR(p.to_vector<float>()[0], 0.9f, 1e-6);
  EXPECT_NEAR(p.to_vector<float>()[1], -1.9f, 1e-6);
}

TEST(CpuKernels, GemmLibrariesAgree) {
  const Tensor a = randn({64, 100}, 32).to(DType::kF32), b = randn({100, 48}, 33).to(DType::kF32);
  const auto before = cpu::gemm_library();
  cpu::set_gemm_library(cpu::GemmLibrary::kOpenBLAS);
  const Tensor c1 = ops::matmul(a, b);
  cpu::set_gemm_library(cpu::GemmLibrary::kDnnl);
  const Tensor c2 = ops::matmul(a, b);
  cpu::set_gemm_library(before);
  EXPECT_TRUE(test::close(c1, c2, 1e-5, 1e-5));
  EXPECT_TRUE(test::close(c1, ops::matmul(randn({64, 100}, 32), randn({100, 48}, 33)), 1e-5, 1e-4));
}

// The decoding product C = alpha A B^T + beta C for 1..kSmallM rows of A (both of its forms:
// dot products below 16 rows, broadcast blocks from 16), against a double-precision sum, with
// leading dimensions larger than the rows, N and K not multiples of the block sizes, and
// beta = 0 ignoring whatever C held (NaN here).
// cpu::sgemm(false, true, ...) = alpha A B^T + beta C on padded leading dimensions against
// double sums; beta = 0 must ignore NaN in C, and the columns past N stay untouched.
void check_sgemm_nt(int64_t M, int64_t N, int64_t K, float alpha, float beta, uint64_t seed) {
  const int64_t lda = K + 3, ldb = K + 5, ldc = N + 2;
  const std::vector<float> a = randn({M, lda}, seed).to(DType::kF32).to_vector<float>();
  const std::vector<float> b = randn({N, ldb}, seed + 1).to(DType::kF32).to_vector<float>();
  std::vector<float> c = randn({M, ldc}, seed + 2).to(DType::kF32).to_vector<float>();
  if (beta == 0.f) std::fill(c.begin(), c.end(), std::numeric_limits<float>::quiet_NaN());
  const std::vector<float> c0 = c;
  cpu::sgemm(false, true, M, N, K, alpha, a.data(), lda, b.data(), ldb, beta, c.data(), ldc);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < ldc; ++j) {
      const size_t at = static_cast<size_t>(i * ldc + j);
      if (j >= N) {  // outside the product: untouched
        EXPECT_TRUE(std::isnan(c[at]) ? std::isnan(c0[at]) : c[at] == c0[at]);
        continue;
      }
      double want = 0, mag = 0;
      for (int64_t k = 0; k < K; ++k) {
        want += double(a[i * lda + k]) * double(b[j * ldb + k]);
        mag += std::abs(double(a[i * lda + k]) * double(b[j * ldb + k]));
      }
      want = alpha * want + (beta == 0.f ? 0.0 : beta * double(c0[at]));
      ASSERT_NEAR(c[at], want, 1e-6 * (std::abs(alpha) * mag + std::abs(want)) + 1e-6)
          << "M " << M << " N " << N << " K " << K << " alpha " << alpha << " beta " << beta
          << " at (" << i << ", " << j << ")";
    }
}

TEST(CpuKernels, SmallMGemmMatchesDoubleSums) {
  if (!cpu::sgemm_small_m_applies(false, true, 1, 1, 1)) GTEST_SKIP() << "needs AVX-512";
  EXPECT_FALSE(cpu::sgemm_small_m_applies(false, true, cpu::kSmallM + 1, 8, 8));
  EXPECT_FALSE(cpu::sgemm_small_m_applies(true, true, 4, 8, 8));
  EXPECT_FALSE(cpu::sgemm_small_m_applies(false, false, 4, 8, 8));
  uint64_t seed = 40;
  for (int64_t M : {1, 2, 3, 4, 5, 7, 15, 16, 17, 31, 32})
    for (int64_t N : {1, 5, 12, 13, 50, 700})  // 700: split between threads
      for (int64_t K : {1, 7, 16, 33, 130})
        for (float beta : {0.f, 0.5f}) check_sgemm_nt(M, N, K, 0.75f, beta, seed += 3);
}

TEST(CpuKernels, MidMGemmMatchesDoubleSums) {
  // 33-512 rows times a transposed weight (beam search over a batch): oneDNN's matmul primitive
  // for alpha 1, beta 0, built once per shape; other alpha/beta and larger M take dnnl_sgemm.
  uint64_t seed = 90;
  for (int repeat = 0; repeat < 2; ++repeat)  // the second pass reuses the primitives built
    for (int64_t M : {33, 64, 128, 203, 512, 513})
      for (int64_t N : {1, 17, 600})
        for (int64_t K : {1, 33, 300}) {
          check_sgemm_nt(M, N, K, 1.f, 0.f, seed += 3);
          if (repeat == 0) check_sgemm_nt(M, N, K, 0.75f, 0.5f, seed += 3);
        }
}

}  // namespace
}  // namespace attend

namespace attend {
namespace {

// linear with a bf16 weight, on the three paths (1-15 rows: dot products along k; 16-64: the
// broadcast blocks; more: weight blocks widened for the f32 product). The widened weights are
// exactly the bf16 values, so against the f64 product with those weights the error is f32
// accumulation only: |err| <= K 2^-24 sum_k |x_k w_k| (a loose bound on recursive summation).
// Against the original f32 weights, rounding each to bf16 (8 significant bits, unit roundoff
// 2^-8) adds at most 2^-8 sum_k |x_k w_k|.
TEST(CpuKernels, LinearWithBf16WeightsIsTheF32ProductOfTheRoundedWeights) {
  if (!ops::bf16_weights_supported()) GTEST_SKIP() << "no AVX-512 on this CPU";
  const int64_t K = 100, N = 37;  // K not a multiple of 16: the masked tail
  const Tensor w = randn({N, K}, 5, 0.3).to(DType::kF32), wb = w.to(DType::kBF16);
  const Tensor bias = randn({N}, 6).to(DType::kF32);
  const std::vector<float> wv = w.to_vector<float>(), bv = bias.to_vector<float>();
  const Tensor wr = wb.to(DType::kF32);  // the rounded weights, exactly
  const std::vector<float> wrv = wr.to_vector<float>();
  for (const int64_t R : {1, 3, 15, 16, 17, 40, 64, 65, 130}) {
    const Tensor x = randn({R, K}, 7 + static_cast<uint64_t>(R)).to(DType::kF32);
    const Tensor y = ops::linear(x, wb, bias);
    ASSERT_EQ(y.dtype(), DType::kF32);
    ASSERT_EQ(y.shape(), (Shape{R, N}));
    const std::vector<float> xv = x.to_vector<float>(), yv = y.to_vector<float>();
    for (int64_t r = 0; r < R; ++r)
      for (int64_t n = 0; n < N; ++n) {
        double rounded = bv[n], exact = bv[n], mag = std::abs(bv[n]);
        for (int64_t k = 0; k < K; ++k) {
          rounded += static_cast<double>(xv[r * K + k]) * wrv[n * K + k];
          exact += static_cast<double>(xv[r * K + k]) * wv[n * K + k];
          mag += std::abs(static_cast<double>(xv[r * K + k]) * wv[n * K + k]);
        }
        const double got = yv[r * N + n];
        ASSERT_LE(std::abs(got - rounded), K * std::ldexp(mag, -24) + 1e-7)
            << "rows " << R << " at " << r << "," << n;
        ASSERT_LE(std::abs(got - exact), std::ldexp(mag, -8) + K * std::ldexp(mag, -24) + 1e-7)
            << "rows " << R << " at " << r << "," << n;
      }
  }
  // A bf16 table's rows come back as f32, exactly the stored values.
  const Tensor rows = ops::embedding(test::ids({3, 0, 36}, {3}), wb);
  ASSERT_EQ(rows.dtype(), DType::kF32);
  const std::vector<float> rv = rows.to_vector<float>();
  for (int64_t k = 0; k < K; ++k) {
    EXPECT_EQ(rv[k], wrv[3 * K + k]);
    EXPECT_EQ(rv[2 * K + k], wrv[36 * K + k]);
  }
  EXPECT_THROW(ops::linear(Tensor::zeros({2, K + 1}), wb, bias), Error);  // shapes still checked
}

}  // namespace
}  // namespace attend
