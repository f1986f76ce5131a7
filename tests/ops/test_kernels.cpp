// Every op's fp32 CPU kernel (forward and backward) against the double-precision reference
// kernels on the same inputs. Inputs are drawn in f64 and rounded to f32 once, so the only
// difference is the kernel's own arithmetic.
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
using Outputs = std::vector<Tensor>;

// fp32 tolerance from STYLE.md (1e-5), relative to the value plus an absolute floor.
constexpr double kRtol = 1e-5, kAtol = 1e-5;

void check_op(const std::function<Outputs(DType)>& f, double rtol = kRtol, double atol = kAtol) {
  const Outputs r64 = f(DType::kF64), r32 = f(DType::kF32);
  ASSERT_EQ(r64.size(), r32.size());
  for (size_t i = 0; i < r64.size(); ++i) {
    ASSERT_EQ(r32[i].dtype(), DType::kF32) << "output " << i;
    EXPECT_TRUE(test::close(r32[i], r64[i], rtol, atol)) << "output " << i;
  }
}

Tensor in(const Tensor& t, DType dt) { return t.to(dt); }

TEST(CpuKernels, MatmulAllTransposesAndBatch) {
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      const Tensor a = randn(ta ? Shape{3, 37, 20} : Shape{3, 20, 37}, 1);
      const Tensor b = randn(tb ? Shape{3, 29, 37} : Shape{3, 37, 29}, 2);
      const Tensor dc = randn({3, 20, 29}, 3);
      check_op([&](DType dt) {
        const ops::MatmulGrads g = ops::matmul_backward(in(dc, dt), in(a, dt), in(b, dt), ta, tb);
        return Outputs{ops::matmul(in(a, dt), in(b, dt), ta, tb), g.da, g.db};
      }, 1e-5, 1e-4);
    }
}

TEST(CpuKernels, MatmulSharedRightOperand) {
  const Tensor a = randn({2, 5, 7, 8}, 4), b = randn({8, 6}, 5), dc = randn({2, 5, 7, 6}, 6);
  check_op([&](DType dt) {
    const ops::MatmulGrads g = ops::matmul_backward(in(dc, dt), in(a, dt), in(b, dt), false, false);
    return Outputs{ops::matmul(in(a, dt), in(b, dt)), g.da, g.db};
  }, 1e-5, 1e-4);
}

TEST(CpuKernels, LinearWithBias) {
  const Tensor x = randn({4, 9, 48}, 7), w = randn({40, 48}, 8, 0.2), b = randn({40}, 9);
  const Tensor dy = randn({4, 9, 40}, 10);
  check_op([&](DType dt) {
    const ops::LinearGrads g = ops::linear_backward(in(dy, dt), in(x, dt), in(w, dt), true);
    return Outputs{ops::linear(in(x, dt), in(w, dt), in(b, dt)), g.dx, g.dw, g.dbias};
  }, 1e-5, 1e-4);
}

TEST(CpuKernels, ElementwiseAndActivations) {
  const Tensor a = randn({70001}, 11), b = randn({70001}, 12), dy = randn({70001}, 13);
  check_op([&](DType dt) {
    return Outputs{ops::add(in(a, dt), in(b, dt)),      ops::mul(in(a, dt), in(b, dt)),
                   ops::sub(in(a, dt), in(b, dt)),      ops::affine(in(a, dt), 0.5, -2.0),
                   ops::relu(in(a, dt)),                ops::relu_backward(in(a, dt), in(dy, dt)),
                   ops::gelu(in(a, dt)),                ops::gelu_backward(in(a, dt), in(dy, dt)),
                   ops::dropout(in(a, dt), 0.25, 5, 9), ops::dropout_backward(in(dy, dt), 0.25, 5, 9)};
  });
}

TEST(CpuKernels, BiasAndReductions) {
  const Tensor x = randn({33, 130}, 14), bias = randn({130}, 15);
  check_op([&](DType dt) {
    return Outputs{ops::bias_add(in(x, dt), in(bias, dt)), ops::sum_rows(in(x, dt)),
                   ops::sum(in(x, dt)), ops::sum_last(in(x, dt)),
                   ops::broadcast_last(ops::sum_last(in(x, dt)), 3)};
  }, 1e-5, 1e-4);
}

TEST(CpuKernels, SoftmaxMaskedAndLogSoftmax) {
  const Tensor x = randn({3, 2, 7, 11}, 16, 3.0), dy = randn({3, 2, 7, 11}, 17);
  const Tensor lens = test::ids({11, 4, 0}, {3});  // full, padded, and fully masked rows
  for (bool causal : {false, true}) {
    ops::AttentionMask m{lens, causal, 4};
    check_op([&](DType dt) {
      const Tensor y = ops::softmax(in(x, dt), m);
      const Tensor ls = ops::log_softmax(in(x, dt));
      return Outputs{y, ops::softmax_backward(y, in(dy, dt)), ls,
                     ops::log_softmax_backward(ls, in(dy, dt)), ops::softmax(in(x, dt))};
    });
  }
}

TEST(CpuKernels, LogSumExpIsWhatLogSoftmaxSubtracts) {
  const Tensor x = randn({3, 5, 1000}, 41, 4.0);
  check_op([&](DType dt) { return Outputs{ops::logsumexp(in(x, dt))}; });
  const Tensor x32 = x.to(DType::kF32), lse = ops::logsumexp(x32), lp = ops::log_softmax(x32);
  ASSERT_EQ(lse.shape(), (Shape{3, 5}));
  const std::vector<float> xv = x32.to_vector<float>(), lv = lse.to_vector<float>(),
                           pv = lp.to_vector<float>();
  for (size_t i = 0; i < xv.size(); ++i) ASSERT_EQ(xv[i] - lv[i / 1000], pv[i]) << i;
  EXPECT_THROW(ops::logsumexp(Tensor::zeros({4, 0})), Error);
}

TEST(CpuKernels, LayerNormWithAndWithoutResidual) {
  const Tensor x = randn({5, 13, 96}, 18, 2.0), r = randn({5, 13, 96}, 19);
  const Tensor g = randn({96}, 20), b = randn({96}, 21), dy = randn({5, 13, 96}, 22);
  for (bool with_res : {false, true})
    check_op([&](DType dt) {
      const ops::LayerNormOut o = ops::layer_norm(in(x, dt), with_res ? in(r, dt) : Tensor(),
                                                  in(g, dt), in(b, dt), 1e-5);
      const ops::LayerNormGrads gr = ops::layer_norm_backward(in(dy, dt), o, in(g, dt));
      return Outputs{o.y, o.sum, o.mean, o.rstd, gr.dx, gr.dgamma, gr.dbeta};
    }, 1e-5, 1e-4);
}

TEST(CpuKernels, EmbeddingSparseAccumulation) {
  const Tensor w = randn({17, 24}, 23), dout = randn({2, 6, 24}, 24);
  const Tensor idx = test::ids({3, 3, 16, 0, 5, 3, 1, 1, 2, 3, 16, 9}, {2, 6});
  check_op([&](DType dt) {
    Tensor dw = Tensor::full({17, 24}, 0.5, dt);  // existing gradient: backward must add to it
    ops::embedding_backward(idx, in(dout, dt), dw);
    return Outputs{ops::embedding(idx, in(w, dt)), dw};
  });
}

TEST(CpuKernels, ReferenceAttention) {
  const Tensor q = randn({2, 3, 9, 16}, 25), k = randn({2, 3, 12, 16}, 26),
               v = randn({2, 3, 12, 16}, 27), dout = randn({2, 3, 9, 16}, 28);
  const Tensor lens = test::ids({12, 5}, {2});
  for (bool causal : {false, true}) {
    ops::AttentionMask m{lens, causal, 3};
    check_op([&](DType dt) {
      const ops::ReferenceAttentionOut o =
          ops::attention_reference(in(q, dt), in(k, dt), in(v, dt), m, 0.25);
      const ops::AttentionGrads g = ops::attention_reference_backward(
          in(dout, dt), in(q, dt), in(k, dt), in(v, dt), o.probs, 0.25);
      return Outputs{o.out, o.probs, g.dq, g.dk, g.dv};
    }, 1e-5, 1e-4);
  }
}

TEST(CpuKernels, CrossEntropyLabelSmoothingAndPadding) {
  const Tensor logits = randn({10, 53}, 29, 4.0);
  const Tensor tg = test::ids({3, 0, 52, 7, 0, 7, 11, 0, 1, 2}, {10});
  for (double eps : {0.0, 0.1})
    for (auto red : {ops::Reduction::kMean, ops::Reduction::kSum}) {
      const ops::CrossEntropyConfig cfg{eps, 0};
      check_op([&](DType dt) {
        const ops::CrossEntropyOut o = ops::cross_entropy(in(logits, dt), tg, cfg, red);
        EXPECT_EQ(o.tokens, 7);
        return Outputs{o.loss, o.lse, ops::cross_entropy_backward(1.5, in(logits, dt), tg, o, cfg)};
      });
    }
}

TEST(CpuKernels, AdamUpdate) {
  const Tensor p0 = randn({1000}, 30), g = randn({1000}, 31);
  const ops::AdamConfig cfg{1e-2, 0.9, 0.98, 1e-9, 0.01};
  check_op([&](DType dt) {
    Tensor p = in(p0, dt).clone(), m = Tensor::zeros({1000}, dt), v = Tensor::zeros({1000}, dt);
    for (int64_t step = 1; step <= 3; ++step) ops::adam_update(p, in(g, dt), m, v, cfg, step);
    return Outputs{p, m, v};
  });
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
