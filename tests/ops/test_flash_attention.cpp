// Fused (flash-style) attention and local attention against the unfused double-precision
// reference, in values and gradients, over many shapes, masks and lengths (including n = 1 and
// lengths that are not a multiple of the tile); the local band against an independently built
// additive mask; the decoding case (one query row against a cache); O(n) memory.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <string>

#include "autograd/functions.h"
#include "kernels/cpu/flash_attention.h"
#include "ops/ops.h"
#include "util.h"

namespace attend {
namespace {

using test::randn;

struct Case {
  int64_t B, H, Tq, Tk, Dh;
  bool padding, causal;
  int64_t window = 0, globals = 0;  // window > 0: local attention
  int bias = 0;  // relative-position score bias: 0 none, 1 shared [H, span], 2 per row [B, H, span]
};

std::string describe(const Case& c) {
  return format("B {} H {} Tq {} Tk {} Dh {} padding {} causal {} window {} globals {} bias {}",
                c.B, c.H, c.Tq, c.Tk, c.Dh, c.padding, c.causal, c.window, c.globals, c.bias);
}

ops::AttentionMask make_mask(const Case& c, uint64_t seed) {
  ops::AttentionMask m;
  if (c.padding) {
    std::vector<int32_t> lens(c.B);
    for (int64_t b = 0; b < c.B; ++b)
      lens[b] = 1 + static_cast<int32_t>(philox4x32(seed, 5, b)[0] % c.Tk);  // 1..Tk
    m.key_lengths = test::ids(lens, {c.B});
  }
  m.causal = c.causal;
  m.query_offset = c.causal ? c.Tk - c.Tq : 0;
  if (c.window > 0) {
    m.local = true;
    m.window = c.window;
    m.global_tokens = c.globals;
  }
  return m;
}

// Fused f32 (values, lse-based backward) against the reference in f64.
void check_case(const Case& c, uint64_t seed) {
  SCOPED_TRACE(describe(c));
  const Tensor q = randn({c.B, c.H, c.Tq, c.Dh}, seed), k = randn({c.B, c.H, c.Tk, c.Dh}, seed + 1),
               v = randn({c.B, c.H, c.Tk, c.Dh}, seed + 2), dout = randn({c.B, c.H, c.Tq, c.Dh}, seed + 3);
  const ops::AttentionMask m = make_mask(c, seed);
  const double scale = 1.0 / std::sqrt(static_cast<double>(c.Dh));
  const int64_t span = c.Tq + m.query_offset + c.Tk - 1;
  const Tensor bias = c.bias == 0   ? Tensor()
                      : c.bias == 1 ? randn({c.H, span}, seed + 4, 2.0)
                                    : randn({c.B, c.H, span}, seed + 4, 2.0);
  const ops::ReferenceAttentionOut ref = ops::attention_reference(q, k, v, m, scale, bias);
  const ops::AttentionGrads gref =
      ops::attention_reference_backward(dout, q, k, v, ref.probs, scale, bias, m.query_offset);
  const Tensor q32 = q.to(DType::kF32), k32 = k.to(DType::kF32), v32 = v.to(DType::kF32);
  const Tensor bias32 = bias.defined() ? bias.to(DType::kF32) : Tensor();
  const ops::AttentionOut f = ops::attention(q32, k32, v32, m, scale, {}, bias32);
  const ops::AttentionGrads gf =
      ops::attention_backward(dout.to(DType::kF32), q32, k32, v32, f, m, scale, bias32);
  EXPECT_TRUE(test::close(f.out, ref.out, 1e-5, 1e-5)) << "out";
  EXPECT_TRUE(test::close(gf.dq, gref.dq, 1e-5, 2e-5)) << "dq";
  EXPECT_TRUE(test::close(gf.dk, gref.dk, 1e-5, 2e-5)) << "dk";
  EXPECT_TRUE(test::close(gf.dv, gref.dv, 1e-5, 2e-5)) << "dv";
  if (bias.defined()) {
    EXPECT_TRUE(test::close(gf.dbias, gref.dbias, 1e-5, 2e-5)) << "dbias";
  }
  // The fused algorithm in double equals the reference to double precision.
  const ops::AttentionOut f64 = ops::attention(q, k, v, m, scale, {}, bias);
  const ops::AttentionGrads g64 = ops::attention_backward(dout, q, k, v, f64, m, scale, bias);
  EXPECT_TRUE(test::close(f64.out, ref.out, 1e-10, 1e-12)) << "out f64";
  EXPECT_TRUE(test::close(g64.dq, gref.dq, 1e-10, 1e-12)) << "dq f64";
  EXPECT_TRUE(test::close(g64.dk, gref.dk, 1e-10, 1e-12)) << "dk f64";
  if (bias.defined()) {
    EXPECT_TRUE(test::close(g64.dbias, gref.dbias, 1e-10, 1e-12)) << "dbias f64";
  }
}

// Every test below runs the f32 kernels of each family this host runs (test::on_every_isa).
TEST(FlashAttention, MatchesReferenceOverManyShapesAndMasks) {
  const int64_t lengths[] = {1, 5, 63, 64, 65, 130};
  const int64_t widths[] = {8, 24, 64, 80};
  test::on_every_isa([&] {
    uint64_t seed = 100;
    int cases = 0;
    for (int64_t Tq : lengths)
      for (int64_t Tk : lengths)
        for (int variant = 0; variant < 4; ++variant) {
          Case c{1 + static_cast<int64_t>(seed % 2), 1 + static_cast<int64_t>(seed % 3), Tq, Tk,
                 widths[seed % 4], (variant & 1) != 0, (variant & 2) != 0 && Tq <= Tk};
          c.bias = static_cast<int>(seed / 7 % 3);
          check_case(c, seed);
          seed += 7;
          ++cases;
        }
    EXPECT_EQ(cases, 144);
  });
}

void larger_heads_and_batches() {
  check_case({3, 4, 200, 200, 64, true, true}, 1);
  check_case({2, 8, 97, 300, 32, true, false}, 2);
  check_case({1, 1, 1, 1, 1, false, false}, 3);
  check_case({1, 2, 1, 777, 64, true, true}, 4);
  // Five query tiles over 8 heads: the forward groups query tiles (up to four per pass over the
  // keys), here a full group and a group of one, the last tile partial.
  check_case({2, 4, 300, 300, 64, true, true}, 5);
  check_case({1, 8, 300, 150, 32, false, false}, 6);
  // Head widths of 6 and 8 vectors of 16 (the micro-kernel blocks 4 vectors at a time).
  check_case({1, 3, 130, 70, 96, true, false}, 7);
  check_case({2, 2, 70, 130, 128, false, true}, 8);
  // Relative-position bias with key tiles split between work items (one head: private bias
  // gradients summed), shared and per row, causal with a query offset.
  check_case({1, 1, 40, 300, 64, true, true, 0, 0, 1}, 9);
  check_case({2, 1, 1, 200, 32, true, false, 0, 0, 2}, 10);
  check_case({2, 3, 130, 130, 64, true, true, 0, 0, 2}, 11);
}

TEST(FlashAttention, LargerHeadsAndBatches) {
  test::on_every_isa([] { larger_heads_and_batches(); });
}

TEST(FlashAttention, LocalMatchesReferenceWithBandedMask) {
  uint64_t seed = 500;
  for (int64_t T : {1, 9, 64, 129, 300})
    for (int64_t w : {1, 3, 64, 100})
      for (int64_t globals : {0, 2})
        for (bool causal : {false, true}) {
          check_case({2, 2, T, T, 32, false, causal, w, globals}, seed);
          seed += 3;
        }
  check_case({2, 3, 150, 150, 16, true, true, 20, 1}, 9);  // with padding
}

TEST(FlashAttention, BandedMaskMeansWhatItSays) {
  // The kernel-level band (window, globals) equals an additive -inf mask built here from the
  // definition, composed from plain ops: softmax(q k^T * scale + bias) v.
  const int64_t T = 23, Dh = 5, w = 3, G = 2;
  const Tensor q = randn({1, 1, T, Dh}, 1), k = randn({1, 1, T, Dh}, 2), v = randn({1, 1, T, Dh}, 3);
  for (bool causal : {false, true}) {
    Tensor bias = Tensor::zeros({1, 1, T, T}, DType::kF64);
    for (int64_t i = 0; i < T; ++i)
      for (int64_t j = 0; j < T; ++j) {
        bool ok = (i < G || j < G) || std::abs(i - j) <= w;
        if (causal && j > i) ok = false;
        bias.data<double>()[i * T + j] = ok ? 0.0 : -1e300;
      }
    const Tensor s = ops::add(ops::affine(ops::matmul(q, k, false, true), 0.5), bias);
    const Tensor expect = ops::matmul(ops::softmax(s), v);
    ops::AttentionMask m;
    m.causal = causal;
    m.local = true;
    m.window = w;
    m.global_tokens = G;
    EXPECT_TRUE(test::close(ops::attention(q, k, v, m, 0.5).out, expect, 1e-12, 1e-12));
    EXPECT_TRUE(test::close(ops::attention_reference(q, k, v, m, 0.5).out, expect, 1e-12, 1e-12));
  }
}

void one_query_row_against_a_cache(int64_t Dh) {
  const int64_t T = 77;
  const Tensor q = randn({2, 4, T, Dh}, 11).to(DType::kF32), k = randn({2, 4, T, Dh}, 12).to(DType::kF32),
               v = randn({2, 4, T, Dh}, 13).to(DType::kF32);
  ops::AttentionMask full;
  full.causal = true;
  const Tensor all = ops::attention(q, k, v, full, 0.125).out;
  for (int64_t t : {int64_t{0}, int64_t{1}, int64_t{40}, T - 1}) {
    ops::AttentionMask step;
    step.causal = true;
    step.query_offset = t;  // Tk - Tq with Tk = t + 1
    const Tensor out = ops::attention(q.slice(2, t, t + 1), k.slice(2, 0, t + 1),
                                      v.slice(2, 0, t + 1), step, 0.125).out;
    EXPECT_TRUE(test::close(out, all.slice(2, t, t + 1).contiguous(), 1e-5, 1e-6)) << "t " << t;
  }
}

TEST(FlashAttention, DecodingOneQueryRowAgainstACache) {
  // Step t of incremental decoding: one query at position t against keys 0..t equals row t of
  // full causal self-attention; head widths of 8 (AVX2's one-vector rows), 64 and 40 (neither
  // micro-kernel's multiple: the portable loops).
  test::on_every_isa([] {
    for (const int64_t Dh : {8, 64, 40}) {
      SCOPED_TRACE("Dh " + std::to_string(Dh));
      one_query_row_against_a_cache(Dh);
    }
  });
}

// Rows rows[b] of t [Bt, ...] -> [rows.size(), ...] (an explicit copy, for the kv_rows oracle).
Tensor gather_rows(const Tensor& t, const std::vector<int32_t>& rows) {
  const std::vector<double> all = t.to(DType::kF64).to_vector<double>();
  const int64_t row = t.numel() / t.size(0);
  std::vector<double> out;
  for (int32_t r : rows) out.insert(out.end(), all.begin() + r * row, all.begin() + (r + 1) * row);
  Shape shape = t.shape();
  shape[0] = static_cast<int64_t>(rows.size());
  return Tensor::from_vector(out, shape).to(t.dtype());
}

TEST(FlashAttention, KvRowsShareKeysAndValuesBetweenQueryRows) {
  // Beam search: several query rows (beams) read one sentence's encoder keys/values. The result
  // must be bit for bit that of attention over keys/values copied out for every row.
  const std::vector<int32_t> rows = {2, 0, 0, 1, 2, 2, 1};
  const int64_t B = static_cast<int64_t>(rows.size()), Bkv = 3;
  for (DType dt : {DType::kF32, DType::kF64})
    for (int64_t Dh : {int64_t{64}, int64_t{24}})
      for (int64_t Tq : {int64_t{1}, int64_t{5}})
        for (bool padding : {false, true}) {
          SCOPED_TRACE(format("dtype {} Dh {} Tq {} padding {}", dtype_name(dt), Dh, Tq, padding));
          const int64_t H = 3, Tk = 37;
          const Tensor q = randn({B, H, Tq, Dh}, 31).to(dt), k = randn({Bkv, H, Tk, Dh}, 32).to(dt),
                       v = randn({Bkv, H, Tk, Dh}, 33).to(dt);
          ops::AttentionMask m;
          if (padding) m.key_lengths = test::ids({5, 37, 1, 20, 36, 9, 30}, {B});
          const Tensor kv_rows = test::ids(rows, {B});
          const ops::AttentionOut shared = ops::attention(q, k, v, m, 0.2, kv_rows);
          const ops::AttentionOut copied =
              ops::attention(q, gather_rows(k, rows), gather_rows(v, rows), m, 0.2);
          EXPECT_EQ(shared.out.to(DType::kF64).to_vector<double>(),
                    copied.out.to(DType::kF64).to_vector<double>());
          EXPECT_EQ(shared.lse.to(DType::kF64).to_vector<double>(),
                    copied.lse.to(DType::kF64).to_vector<double>());
        }
}

TEST(FlashAttention, FullyMaskedRowsGiveZerosNotNaN) {
  const Tensor q = randn({2, 1, 3, 4}, 21).to(DType::kF32), k = randn({2, 1, 5, 4}, 22).to(DType::kF32);
  ops::AttentionMask m;
  m.key_lengths = test::ids({0, 5}, {2});
  const ops::AttentionOut o = ops::attention(q, k, k, m, 1.0);
  for (float x : o.out.slice(0, 0, 1).to_vector<float>()) EXPECT_EQ(x, 0.f);
  const ops::AttentionGrads g = ops::attention_backward(o.out, q, k, k, o, m, 1.0);
  for (float x : g.dq.to_vector<float>()) EXPECT_FALSE(std::isnan(x));
}

TEST(FlashAttention, TileSkippingKeepsLocalAttentionLinear) {
  kernels::Mask m;
  m.window = 8;
  // Query tile [0, 64) cannot see key tile [128, 192) with a window of 8; with a global token
  // it can (the global query 0 sees everything).
  EXPECT_FALSE(cpu::tile_may_be_visible(m, 0, 0, 64, 128, 192, 1000));
  EXPECT_TRUE(cpu::tile_may_be_visible(m, 0, 64, 128, 128, 192, 1000));
  m.global_tokens = 1;
  EXPECT_TRUE(cpu::tile_may_be_visible(m, 0, 0, 64, 128, 192, 1000));
  EXPECT_FALSE(cpu::tile_may_be_visible(m, 0, 64, 128, 256, 320, 1000));
}

// A "Key:   123 kB" line of /proc/self/status, in KiB (-1 if absent).
long status_kib(const std::string& key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(key, 0) == 0) return std::stol(line.substr(key.size()));
  return -1;
}
bool reset_hwm() {
  std::ofstream f("/proc/self/clear_refs");
  f << "5";
  return static_cast<bool>(f);
}

TEST(FlashAttention, MemoryIsLinearInSequenceLength) {
  // Forward + backward at n = 4096, one head of 64: the score matrix alone would be 64 MiB.
  const int64_t n = 4096, Dh = 64;
  const Tensor q = randn({1, 1, n, Dh}, 31).to(DType::kF32), k = randn({1, 1, n, Dh}, 32).to(DType::kF32),
               v = randn({1, 1, n, Dh}, 33).to(DType::kF32);
  if (!reset_hwm() || status_kib("VmHWM:") < 0) GTEST_SKIP() << "peak RSS cannot be reset here";
  const long base = status_kib("VmRSS:");
  {
    ops::AttentionMask m;
    m.causal = true;
    const ops::AttentionOut o = ops::attention(q, k, v, m, 0.125);
    const ops::AttentionGrads g = ops::attention_backward(o.out, q, k, v, o, m, 0.125);
    EXPECT_EQ(g.dq.numel(), n * Dh);
  }
  const long extra_kib = status_kib("VmHWM:") - base;
  // Inputs-sized buffers (o, dq, dk, dv, transposes: ~1 MiB each) but nothing near n^2.
  EXPECT_LT(extra_kib, 16 * 1024) << "extra peak memory " << extra_kib << " KiB";
}

TEST(FlashAttention, BadInputNamesOpAndShapes) {
  const Tensor q = Tensor::zeros({1, 2, 4, 8}), k = Tensor::zeros({1, 2, 5, 8});
  ops::AttentionMask m;
  m.local = true;
  m.window = 0;
  EXPECT_TRUE(test::throws_with([&] { ops::attention(q, k, k, m, 1.0); },
                                {"attention", "window > 0", "got 0"}));
  m.window = -3;
  EXPECT_TRUE(test::throws_with([&] { ops::attention(q, k, k, m, 1.0); }, {"window", "-3"}));
  const Tensor k16 = Tensor::zeros({1, 2, 5, 16});
  EXPECT_TRUE(test::throws_with([&] { ops::attention(q, k16, k16, {}, 1.0); },
                                {"attention", "head width", "[1, 2, 4, 8]", "[1, 2, 5, 16]"}));
  ops::AttentionMask bad_len;
  bad_len.key_lengths = test::ids({1, 2}, {2});
  EXPECT_TRUE(test::throws_with([&] { ops::attention(q, k, k, bad_len, 1.0); },
                                {"attention", "key_lengths", "[1]", "[2]"}));
  const Tensor k3 = Tensor::zeros({3, 2, 5, 8});
  EXPECT_TRUE(test::throws_with([&] { ops::attention(q, k3, k3, {}, 1.0); },
                                {"attention", "batch", "[1, 2, 4, 8]", "[3, 2, 5, 8]"}));
  EXPECT_TRUE(test::throws_with([&] { ops::attention(q, k3, k3, {}, 1.0, test::ids({3}, {1})); },
                                {"attention", "kv_rows[0] = 3", "[0, 3)"}));
  EXPECT_TRUE(test::throws_with([&] { ops::attention(q, k3, k3, {}, 1.0, test::ids({0, 1}, {2})); },
                                {"attention", "kv_rows", "[1]", "[2]"}));
  EXPECT_TRUE(test::throws_with(
      [&] { ops::attention(q, k3, k3, {}, 1.0, Tensor::zeros({1})); }, {"attention", "kv_rows"}));
}

}  // namespace
}  // namespace attend
