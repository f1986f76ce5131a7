// The op table: every op, forward and backward, on every backend against the f64 reference
// kernels (CPU f64) on the same inputs. A cell of the table is (op case, backend); the inputs
// are drawn in f64 and converted to the backend's dtype and device once, so the only
// difference is the backend's own arithmetic.
//
// Adding a backend or a dtype is one line in backends(); adding an op is one entry in cases().
// A backend that lacks an op's kernel shows as a skipped cell naming the op ("not implemented
// for <device> <dtype>"), so missing kernels are visible in the test list.
//
// Tolerances (|got - want| <= atol + rtol |want|, elementwise):
//  - f32 elementwise ops: one or two roundings of a value computed exactly in f64: rtol 1e-5
//    (STYLE.md's fp32 tolerance, ~80 ulp of float's 2^-24) with atol 1e-5 for values near 0.
//  - f32 reductions over K terms of size ~1 (GEMMs, layer norm, attention, sums): the error of
//    a sum grows like sqrt(K) ulp for blocked/pairwise summation; K <= 1000 here, so atol 1e-4
//    (about 10 x sqrt(1000) x 2^-24 x the term scale) with rtol 1e-5.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/error.h"
#include "ops/dispatch.h"
#include "ops/ops.h"
#include "util.h"

namespace attend {
namespace {

using test::randn;
using Outputs = std::vector<Tensor>;

struct Backend {
  std::string name;
  Device device;
  DType dtype;
  double rtol;
  double atol_scale;  // multiplies each case's atol (1 for f32)
  bool available() const { return device.is_cpu() || cuda_device_count() > 0; }
};

/// The backends under test, one line each.
const std::vector<Backend>& backends() {
  static const std::vector<Backend> b = {
      {"cpu_f32", Device::cpu(), DType::kF32, 1e-5, 1.0},
      {"cuda_f32", Device::cuda(0), DType::kF32, 1e-5, 1.0},
  };
  return b;
}

/// Where a case runs: its inputs (f64 on the CPU) are converted with in().
struct On {
  Device device;
  DType dtype;
  Tensor in(const Tensor& t) const { return t.to(dtype).to(device); }
  /// Index tensors (i32: ids, targets, key lengths, rows) keep their dtype and move to the device.
  Tensor ids(std::vector<int32_t> v, const Shape& s) const {
    return test::ids(std::move(v), s).to(device);
  }
  Tensor zeros(const Shape& s) const { return Tensor::zeros(s, dtype, device); }
  /// An output of another dtype (indices, counts, f32-only ops) as values of this backend's
  /// dtype and device, so the table compares it like the rest.
  Tensor values(const Tensor& t) const { return t.to(Device::cpu()).to(dtype).to(device); }
};

struct OpCase {
  std::string name;
  double atol;  // 1e-5 (elementwise) or 1e-4 (reductions), see the header comment
  std::function<Outputs(const On&)> run;
};

const std::vector<OpCase>& cases() {
  static const std::vector<OpCase> c = [] {
    std::vector<OpCase> v;
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        v.push_back({std::string("matmul_t") + (ta ? "1" : "0") + (tb ? "1" : "0"), 1e-4,
                     [ta, tb](const On& on) {
                       const Tensor a = randn(ta ? Shape{3, 37, 20} : Shape{3, 20, 37}, 1);
                       const Tensor b = randn(tb ? Shape{3, 29, 37} : Shape{3, 37, 29}, 2);
                       const Tensor dc = randn({3, 20, 29}, 3);
                       const ops::MatmulGrads g =
                           ops::matmul_backward(on.in(dc), on.in(a), on.in(b), ta, tb);
                       return Outputs{ops::matmul(on.in(a), on.in(b), ta, tb), g.da, g.db};
                     }});
    v.push_back({"matmul_shared_right", 1e-4, [](const On& on) {
                   const Tensor a = randn({2, 5, 7, 8}, 4), b = randn({8, 6}, 5);
                   const Tensor dc = randn({2, 5, 7, 6}, 6);
                   const ops::MatmulGrads g =
                       ops::matmul_backward(on.in(dc), on.in(a), on.in(b), false, false);
                   return Outputs{ops::matmul(on.in(a), on.in(b)), g.da, g.db};
                 }});
    for (bool bias : {false, true})
      v.push_back(
          {bias ? "linear_bias" : "linear", 1e-4, [bias](const On& on) {
             const Tensor x = randn({4, 9, 48}, 7), w = randn({40, 48}, 8, 0.2);
             const Tensor b = randn({40}, 9), dy = randn({4, 9, 40}, 10);
             const ops::LinearGrads g = ops::linear_backward(on.in(dy), on.in(x), on.in(w), bias);
             Outputs o{ops::linear(on.in(x), on.in(w), bias ? on.in(b) : Tensor()), g.dx, g.dw};
             if (bias) o.push_back(g.dbias);
             return o;
           }});
    const Tensor a = randn({70001}, 11), b = randn({70001}, 12), dy = randn({70001}, 13);
    auto binary = [&](const char* name, Tensor (*f)(const Tensor&, const Tensor&)) {
      v.push_back({name, 1e-5, [a, b, f](const On& on) { return Outputs{f(on.in(a), on.in(b))}; }});
    };
    binary("add", ops::add);
    binary("sub", ops::sub);
    binary("mul", ops::mul);
    v.push_back(
        {"affine", 1e-5, [a](const On& on) { return Outputs{ops::affine(on.in(a), 0.5, -2.0)}; }});
    v.push_back({"relu", 1e-5, [a, dy](const On& on) {
                   return Outputs{ops::relu(on.in(a)), ops::relu_backward(on.in(a), on.in(dy))};
                 }});
    v.push_back({"gelu", 1e-5, [a, dy](const On& on) {
                   return Outputs{ops::gelu(on.in(a)), ops::gelu_backward(on.in(a), on.in(dy))};
                 }});
    v.push_back({"gelu_tanh", 1e-5, [a, dy](const On& on) {
                   return Outputs{ops::gelu_tanh(on.in(a)),
                                  ops::gelu_tanh_backward(on.in(a), on.in(dy))};
                 }});
    v.push_back({"silu", 1e-5, [a, dy](const On& on) {
                   return Outputs{ops::silu(on.in(a)), ops::silu_backward(on.in(a), on.in(dy))};
                 }});
    v.push_back({"dropout", 1e-5, [a, dy](const On& on) {
                   return Outputs{ops::dropout(on.in(a), 0.25, 5, 9),
                                  ops::dropout_backward(on.in(dy), 0.25, 5, 9)};
                 }});
    v.push_back({"accumulate_scale_", 1e-5, [a, b](const On& on) {
                   Tensor y = on.in(a).clone();
                   ops::accumulate_(y, on.in(b));
                   Tensor z = on.in(b).clone();
                   ops::scale_(z, -0.75);
                   return Outputs{y, z};
                 }});
    v.push_back({"sum_squares", 1e-4, [a](const On& on) {
                   // Returned as a one-element tensor so that the table compares it like the rest;
                   // scaled by 1/n so that the tolerance is on the mean square (~1).
                   const double n = static_cast<double>(a.numel());
                   return Outputs{Tensor::full({1}, ops::sum_squares(on.in(a)) / n, DType::kF64)};
                 }});
    v.push_back({"bias_and_reductions", 1e-4, [](const On& on) {
                   const Tensor x = randn({33, 130}, 14), bias = randn({130}, 15);
                   return Outputs{ops::bias_add(on.in(x), on.in(bias)), ops::sum_rows(on.in(x)),
                                  ops::sum(on.in(x)), ops::sum_last(on.in(x)),
                                  ops::broadcast_last(ops::sum_last(on.in(x)), 3)};
                 }});
    for (bool causal : {false, true})
      v.push_back(
          {causal ? "softmax_masked_causal" : "softmax_masked", 1e-5, [causal](const On& on) {
             const Tensor x = randn({3, 2, 7, 11}, 16, 3.0), dy = randn({3, 2, 7, 11}, 17);
             // full, padded and fully masked rows
             const ops::AttentionMask m{on.ids({11, 4, 0}, {3}), causal, 4};
             const Tensor y = ops::softmax(on.in(x), m);
             return Outputs{y, ops::softmax_backward(y, on.in(dy)), ops::softmax(on.in(x))};
           }});
    v.push_back({"log_softmax", 1e-5, [](const On& on) {
                   const Tensor x = randn({3, 2, 7, 11}, 16, 3.0), dy = randn({3, 2, 7, 11}, 17);
                   const Tensor ls = ops::log_softmax(on.in(x));
                   return Outputs{ls, ops::log_softmax_backward(ls, on.in(dy))};
                 }});
    v.push_back({"logsumexp", 1e-5, [](const On& on) {
                   return Outputs{ops::logsumexp(on.in(randn({3, 5, 1000}, 41, 4.0)))};
                 }});
    for (bool residual : {false, true})
      v.push_back(
          {residual ? "layer_norm_residual" : "layer_norm", 1e-4, [residual](const On& on) {
             const Tensor x = randn({5, 13, 96}, 18, 2.0), r = randn({5, 13, 96}, 19);
             const Tensor g = randn({96}, 20), b = randn({96}, 21), dy = randn({5, 13, 96}, 22);
             const ops::LayerNormOut o = ops::layer_norm(on.in(x), residual ? on.in(r) : Tensor(),
                                                         on.in(g), on.in(b), 1e-5);
             const ops::LayerNormGrads gr = ops::layer_norm_backward(on.in(dy), o, on.in(g));
             return Outputs{o.y, o.sum, o.mean, o.rstd, gr.dx, gr.dgamma, gr.dbeta};
           }});
    for (bool residual : {false, true})
      v.push_back({residual ? "rms_norm_residual" : "rms_norm", 1e-4, [residual](const On& on) {
                     const Tensor x = randn({5, 13, 96}, 18, 2.0), r = randn({5, 13, 96}, 19);
                     const Tensor g = randn({96}, 20), dy = randn({5, 13, 96}, 22);
                     const ops::LayerNormOut o =
                         ops::rms_norm(on.in(x), residual ? on.in(r) : Tensor(), on.in(g), 1e-6);
                     const ops::LayerNormGrads gr =
                         ops::layer_norm_backward(on.in(dy), o, on.in(g));
                     return Outputs{o.y, o.sum, o.rstd, gr.dx, gr.dgamma};
                   }});
    v.push_back({"embedding", 1e-5, [](const On& on) {
                   const Tensor w = randn({17, 24}, 23), dout = randn({2, 6, 24}, 24);
                   const Tensor idx = on.ids({3, 3, 16, 0, 5, 3, 1, 1, 2, 3, 16, 9}, {2, 6});
                   Tensor dw = on.in(Tensor::full({17, 24}, 0.5, DType::kF64));  // backward adds
                   ops::embedding_backward(idx, on.in(dout), dw);
                   return Outputs{ops::embedding(idx, on.in(w)), dw};
                 }});
    for (bool fused : {false, true})
      for (bool causal : {false, true})
        v.push_back(
            {std::string(fused ? "attention" : "attention_reference") + (causal ? "_causal" : ""),
             1e-4, [fused, causal](const On& on) {
               const Tensor q = randn({2, 3, 9, 16}, 25), k = randn({2, 3, 12, 16}, 26),
                            val = randn({2, 3, 12, 16}, 27), dout = randn({2, 3, 9, 16}, 28);
               const ops::AttentionMask m{on.ids({12, 5}, {2}), causal, 3};
               if (fused) {
                 const ops::AttentionOut o =
                     ops::attention(on.in(q), on.in(k), on.in(val), m, 0.25);
                 const ops::AttentionGrads g = ops::attention_backward(
                     on.in(dout), on.in(q), on.in(k), on.in(val), o, m, 0.25);
                 return Outputs{o.out, g.dq, g.dk, g.dv};
               }
               const ops::ReferenceAttentionOut o =
                   ops::attention_reference(on.in(q), on.in(k), on.in(val), m, 0.25);
               const ops::AttentionGrads g = ops::attention_reference_backward(
                   on.in(dout), on.in(q), on.in(k), on.in(val), o.probs, 0.25);
               return Outputs{o.out, o.probs, g.dq, g.dk, g.dv};
             }});
    // A relative-position bias (shared [H, span] or per batch row [B, H, span]) under a local
    // window with a global token, padding and a query offset: the fused and the unfused kernels,
    // forward and backward, with the bias gradient.
    for (bool per_row : {false, true})
      for (bool fused : {false, true})
        v.push_back(
            {std::string(fused ? "attention" : "attention_reference") + "_bias_local" +
                 (per_row ? "_per_row" : ""),
             1e-4, [fused, per_row](const On& on) {
               const Tensor q = randn({2, 3, 9, 16}, 42), k = randn({2, 3, 12, 16}, 43),
                            val = randn({2, 3, 12, 16}, 44), dout = randn({2, 3, 9, 16}, 45);
               const int64_t span = (9 + 3) + 12 - 1;
               const Tensor bias = randn(per_row ? Shape{2, 3, span} : Shape{3, span}, 46);
               ops::AttentionMask m{on.ids({12, 7}, {2}), false, 3};
               m.local = true;
               m.window = 2;
               m.global_tokens = 1;
               if (fused) {
                 const ops::AttentionOut o =
                     ops::attention(on.in(q), on.in(k), on.in(val), m, 0.25, {}, on.in(bias));
                 const ops::AttentionGrads g = ops::attention_backward(
                     on.in(dout), on.in(q), on.in(k), on.in(val), o, m, 0.25, on.in(bias));
                 return Outputs{o.out, g.dq, g.dk, g.dv, g.dbias};
               }
               const ops::ReferenceAttentionOut o =
                   ops::attention_reference(on.in(q), on.in(k), on.in(val), m, 0.25, on.in(bias));
               const ops::AttentionGrads g = ops::attention_reference_backward(
                   on.in(dout), on.in(q), on.in(k), on.in(val), o.probs, 0.25, on.in(bias), 3);
               return Outputs{o.out, o.probs, g.dq, g.dk, g.dv, g.dbias};
             }});
    // Decoding rows: one query each, reading the keys and values of the row kv_rows names (beams
    // sharing their sentence's encoder output), with padding; forward only.
    v.push_back(
        {"attention_kv_rows", 1e-4, [](const On& on) {
           const Tensor q = randn({3, 2, 1, 16}, 47), k = randn({2, 2, 10, 16}, 48),
                        val = randn({2, 2, 10, 16}, 49);
           const ops::AttentionMask m{on.ids({10, 4, 10}, {3})};
           return Outputs{
               ops::attention(on.in(q), on.in(k), on.in(val), m, 0.25, on.ids({1, 0, 1}, {3})).out};
         }});
    for (double eps : {0.0, 0.1})
      for (auto red : {ops::Reduction::kMean, ops::Reduction::kSum})
        v.push_back({std::string("cross_entropy_ls") + (eps > 0 ? "01" : "0") +
                         (red == ops::Reduction::kSum ? "_sum" : "_mean"),
                     1e-5, [eps, red](const On& on) {
                       const Tensor logits = randn({10, 53}, 29, 4.0);
                       const Tensor tg = on.ids({3, 0, 52, 7, 0, 7, 11, 0, 1, 2}, {10});
                       const ops::CrossEntropyConfig cfg{eps, 0};
                       const ops::CrossEntropyOut o =
                           ops::cross_entropy(on.in(logits), tg, cfg, red);
                       EXPECT_EQ(o.tokens, 7);
                       return Outputs{o.loss, o.lse,
                                      ops::cross_entropy_backward(1.5, on.in(logits), tg, o, cfg)};
                     }});
    v.push_back({"adam_update", 1e-5, [](const On& on) {
                   const Tensor p0 = randn({1000}, 30), g = randn({1000}, 31);
                   const ops::AdamConfig cfg{1e-2, 0.9, 0.98, 1e-9, 0.01};
                   Tensor p = on.in(p0).clone(), m = on.zeros({1000}), s = on.zeros({1000});
                   for (int64_t step = 1; step <= 3; ++step)
                     ops::adam_update(p, on.in(g), m, s, cfg, step);
                   return Outputs{p, m, s};
                 }});
    // The decoding step's ops. top_k and pick exist for f32 only, so their reference is the
    // CPU's f32 kernel (checked against sorts and loops in test_decoding.cpp), run on the same
    // rounded inputs; index outputs come back as values of the backend's dtype. Rounded logits
    // make ties, which must come out lower column first on every backend.
    v.push_back({"top_k_logsumexp", 1e-5, [](const On& on) {
                   Tensor x = randn({5, 300}, 50, 2.0);
                   for (int64_t i = 0; i < x.numel(); ++i)
                     x.data<double>()[i] = std::round(x.data<double>()[i]);
                   const Tensor xf = x.to(DType::kF32).to(on.device);
                   const Tensor rb = on.ids({-1, 3, -1, 0, 299}, {5});
                   const ops::TopKLse t = ops::top_k_logsumexp(xf, 6, {7, 11}, rb);
                   const ops::TopK plain = ops::top_k(xf, 4);
                   return Outputs{on.values(t.top.values), on.values(t.top.indices),
                                  on.values(t.top.counts), on.values(t.lse),
                                  on.values(plain.values), on.values(plain.indices)};
                 }});
    v.push_back({"pick_iota_add_index", 1e-5, [](const On& on) {
                   const Tensor xf = randn({4, 9}, 51).to(DType::kF32).to(on.device);
                   const Tensor picked =
                       ops::pick(xf, on.ids({3, 0, 3, 1}, {4}), on.ids({8, 0, 2, 5}, {4}));
                   return Outputs{on.values(picked), on.values(ops::iota({2, 5}, on.device)),
                                  on.values(ops::add_index(on.ids({4, -2, 0}, {3}), 3))};
                 }});
    // A key/value cache [slots, groups, capacity, width]: new positions written into two slots,
    // then one slot's prefix copied into another (a beam that branches).
    v.push_back({"cache_moves", 1e-5, [](const On& on) {
                   Tensor cache = on.in(randn({4, 2, 6, 3}, 52));
                   ops::write_positions(cache, on.in(randn({2, 2, 3, 3}, 53)), on.ids({2, 0}, {2}),
                                        on.ids({1, 3}, {2}));
                   ops::copy_positions(cache, on.ids({2}, {1}), on.ids({1}, {1}), on.ids({4}, {1}));
                   return Outputs{cache};
                 }});
    // Round trip through int8: a value whose x / scale lands within float rounding of a .5
    // boundary could round to the neighbouring level (one scale, ~0.03 here) in f32; these
    // inputs have none, so the outputs agree to f32 rounding of the scale.
    v.push_back({"quantize_rows", 1e-5, [](const On& on) {
                   Tensor x = randn({33, 70}, 32);
                   const ops::QuantizedRows qr = ops::quantize_rows(on.in(x));
                   return Outputs{qr.scales, ops::dequantize_rows(qr.q, qr.scales)};
                 }});
    return v;
  }();
  return c;
}

struct Cell {
  size_t op, backend;
};

class OpTable : public ::testing::TestWithParam<Cell> {};

TEST_P(OpTable, MatchesTheF64Reference) {
  const OpCase& c = cases()[GetParam().op];
  const Backend& b = backends()[GetParam().backend];
  if (!b.available()) GTEST_SKIP() << b.name << ": no device";
  const Outputs want = c.run({Device::cpu(), DType::kF64});
  // On the CPU, every family of hand-written kernels the host runs (portable, AVX2, AVX-512).
  auto check = [&] {
    Outputs got;
    try {
      got = c.run({b.device, b.dtype});
    } catch (const Error& e) {
      const std::string m = e.what();
      if (m.find("not implemented for") == std::string::npos) throw;
      GTEST_SKIP() << m;  // a missing kernel: visible as a skipped cell
    }
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) {
      const bool scalar_summary = got[i].dtype() == DType::kF64 && want[i].numel() == 1;
      if (!scalar_summary) {
        EXPECT_EQ(got[i].dtype(), b.dtype) << "output " << i;
        EXPECT_EQ(got[i].device().str(), b.device.str()) << "output " << i;
      }
      EXPECT_TRUE(test::close(got[i].to(Device::cpu()), want[i], b.rtol, c.atol * b.atol_scale))
          << c.name << " on " << b.name << ", output " << i;
    }
  };
  if (b.device.is_cpu())
    test::on_every_isa(check);
  else
    check();
}

std::vector<Cell> all_cells() {
  std::vector<Cell> out;
  for (size_t o = 0; o < cases().size(); ++o)
    for (size_t b = 0; b < backends().size(); ++b) out.push_back({o, b});
  return out;
}

INSTANTIATE_TEST_SUITE_P(Ops, OpTable, ::testing::ValuesIn(all_cells()),
                         [](const ::testing::TestParamInfo<Cell>& info) {
                           return cases()[info.param.op].name + "_on_" +
                                  backends()[info.param.backend].name;
                         });

// Coverage, read without a device: in a CUDA build, every op the table exercises has a CUDA
// kernel for each CPU cell it has (f32, and i32 for the index ops), so a missing kernel fails
// here -- in CI's CUDA stage, which has no GPU -- instead of showing as a skipped cell on one.
// The cells come from the dispatch itself (ops::detail::CellProbe) while the table's cases run
// on the CPU.
TEST(OpTable, EveryOpHasACudaKernel) {
  if (!built_with_cuda()) GTEST_SKIP() << "built without CUDA: the CUDA cells are compiled out";
  ops::detail::CellProbe probe;
  for (const OpCase& c : cases()) (void)c.run({Device::cpu(), DType::kF32});
  EXPECT_GE(probe.ops.size(), 40u) << "the table exercises fewer ops than it did";
  for (const auto& [op, seen] : probe.ops) {
    EXPECT_TRUE(seen.cpu_f32 || seen.cpu_i32) << op << ": no CPU cell";
    EXPECT_TRUE(!seen.cpu_f32 || seen.cuda_f32) << op << ": a CPU f32 kernel and no CUDA f32 one";
    EXPECT_TRUE(!seen.cpu_i32 || seen.cuda_i32) << op << ": a CPU i32 kernel and no CUDA i32 one";
  }
}

TEST(OpTable, EveryCaseHasAUniqueName) {
  std::set<std::string> names;
  for (const OpCase& c : cases()) EXPECT_TRUE(names.insert(c.name).second) << c.name;
  EXPECT_GE(cases().size(), 30u);
}

}  // namespace
}  // namespace attend
