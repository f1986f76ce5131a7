// Decoding ops against plain loops: write_positions and copy_positions (cache moves, any dtype),
// top_k (ties, banned columns, rows with fewer allowed columns than k), the sampler (its draws'
// frequencies against the softmax, top-k, top-p, banned columns), pick, iota, add_index,
// scale_ and sum_squares; bad arguments name the op.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "ops/ops.h"
#include "util.h"

namespace attend {
namespace {

Tensor i32(const std::vector<int32_t>& v) {
  return Tensor::from_vector(v, {static_cast<int64_t>(v.size())});
}

Tensor iota(const Shape& shape, DType dt, double base) {
  std::vector<double> v(static_cast<size_t>(shape_numel(shape)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = base + static_cast<double>(i);
  return Tensor::from_vector(v, shape).to(dt);
}

TEST(DecodingOps, WriteAndCopyPositionsMatchLoops) {
  for (const DType dt : {DType::kF32, DType::kF64, DType::kBF16}) {
    const int64_t S = 4, H = 2, C = 5, W = 3, n = 2, t = 2;
    Tensor cache = iota({S, H, C, W}, dt, 0);
    const std::vector<double> before = cache.to(DType::kF64).to_vector<double>();
    const Tensor src = iota({n, H, t, W}, dt, 1000);
    ops::write_positions(cache, src, i32({3, 1}), i32({1, 3}));
    std::vector<double> want = before;
    const auto s = src.to(DType::kF64).to_vector<double>();
    const int32_t rows[] = {3, 1}, offs[] = {1, 3};
    for (int64_t i = 0; i < n; ++i)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t j = 0; j < t; ++j)
          for (int64_t w = 0; w < W; ++w)
            want[((rows[i] * H + h) * C + offs[i] + j) * W + w] = s[((i * H + h) * t + j) * W + w];
    EXPECT_EQ(cache.to(DType::kF64).to_vector<double>(), want) << dtype_name(dt);
    ops::copy_positions(cache, i32({3, 1}), i32({0, 2}), i32({4, 2}));
    const int32_t from[] = {3, 1}, to[] = {0, 2}, len[] = {4, 2};
    const std::vector<double> mid = want;
    for (int64_t i = 0; i < 2; ++i)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t j = 0; j < len[i]; ++j)
          for (int64_t w = 0; w < W; ++w)
            want[((to[i] * H + h) * C + j) * W + w] = mid[((from[i] * H + h) * C + j) * W + w];
    EXPECT_EQ(cache.to(DType::kF64).to_vector<double>(), want) << dtype_name(dt);
  }
}

TEST(DecodingOps, TopKMatchesASort) {
  // Row 0 has ties (3.0 at columns 2, 5 and 9); column 1 is banned everywhere, column 5 in row 0.
  const std::vector<float> x = {0, 9, 3, 1, 7, 3, -2, 8, 0.5f, 3, 2, 6, 6, 6, 6, 6, 6, 6, 1, 4, 5, 5,
                                -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                -1, -1};
  const int64_t V = 20, n = 2, k = 6;
  const ops::TopK top = ops::top_k(Tensor::from_vector(x, {n, V}), k, {1}, i32({5, -1}));
  const auto values = top.values.to_vector<float>();
  const auto ids = top.indices.to_vector<int32_t>();
  const auto counts = top.counts.to_vector<int32_t>();
  for (int64_t r = 0; r < n; ++r) {
    std::vector<std::pair<float, int32_t>> all;
    for (int32_t v = 0; v < V; ++v)
      if (v != 1 && !(r == 0 && v == 5)) all.push_back({x[r * V + v], v});
    std::stable_sort(all.begin(), all.end(), [](auto& a, auto& b) { return a.first > b.first; });
    ASSERT_EQ(counts[r], k);
    for (int64_t i = 0; i < k; ++i) {
      EXPECT_EQ(ids[r * k + i], all[i].second) << "row " << r << " rank " << i;
      EXPECT_EQ(values[r * k + i], all[i].first);
    }
  }
  // Fewer allowed columns than k: the rest is marked -1.
  const ops::TopK small = ops::top_k(Tensor::from_vector<float>({1, 2, 3}, {1, 3}), 4, {0});
  EXPECT_EQ(small.counts.to_vector<int32_t>(), (std::vector<int32_t>{2}));
  EXPECT_EQ(small.indices.to_vector<int32_t>(), (std::vector<int32_t>{2, 1, -1, -1}));
}

// The fused step: the same top-k as top_k, and the log sum exp of every column (banned ones
// too) against a double-precision sum, over rows spanning several 512-column blocks whose
// maximum sits early, late or in the middle (the running sum is rescaled when it grows).
TEST(DecodingOps, TopKLogSumExpMatchesTheTwoPasses) {
  const int64_t n = 4, V = 1700, k = 8;
  std::vector<float> x = test::randn({n, V}, 77, 4.0).to(DType::kF32).to_vector<float>();
  x[0 * V + 3] = 40.f;     // row 0: maximum in the first block
  x[1 * V + 1650] = 40.f;  // row 1: in the last block
  x[2 * V + 900] = -60.f;  // row 2: a very small value
  x[3 * V + 1023] = 25.f;  // row 3: the end of the second block
  const Tensor xt = Tensor::from_vector(x, {n, V});
  const Tensor row_banned = i32({7, -1, 900, 1023});
  const ops::TopKLse fused = ops::top_k_logsumexp(xt, k, {2, 1650}, row_banned);
  const ops::TopK plain = ops::top_k(xt, k, {2, 1650}, row_banned);
  EXPECT_EQ(fused.top.indices.to_vector<int32_t>(), plain.indices.to_vector<int32_t>());
  EXPECT_EQ(fused.top.values.to_vector<float>(), plain.values.to_vector<float>());
  EXPECT_EQ(fused.top.counts.to_vector<int32_t>(), plain.counts.to_vector<int32_t>());
  const auto lse = fused.lse.to_vector<float>();
  for (int64_t r = 0; r < n; ++r) {
    double m = -1e30, s = 0;
    for (int64_t v = 0; v < V; ++v) m = std::max(m, static_cast<double>(x[r * V + v]));
    for (int64_t v = 0; v < V; ++v) s += std::exp(x[r * V + v] - m);
    // f32 sums of 1,700 terms with a fast exp (relative error ~1e-7 each): 1e-5 absolute.
    EXPECT_NEAR(lse[r], m + std::log(s), 1e-5 * std::max(1.0, std::abs(m))) << "row " << r;
  }
  EXPECT_NE(test::error_of([&] { ops::top_k_logsumexp(xt, 0); }).find("k must be >= 1"),
            std::string::npos);
}

// Draws on an even grid of uniforms: each token's share of the grid is its probability.
std::vector<double> draw_shares(const Tensor& x, int64_t row, double temperature, int32_t top_k,
                                double top_p, const std::vector<int32_t>& banned,
                                const Tensor& row_banned, int64_t grid) {
  const int64_t V = x.size(1);
  std::vector<int32_t> rows(static_cast<size_t>(grid), static_cast<int32_t>(row)),
      ks(static_cast<size_t>(grid), top_k);
  std::vector<double> ts(static_cast<size_t>(grid), temperature),
      ps(static_cast<size_t>(grid), top_p);
  std::vector<float> us(static_cast<size_t>(grid));
  for (int64_t i = 0; i < grid; ++i)
    us[static_cast<size_t>(i)] = static_cast<float>((static_cast<double>(i) + 0.5) / grid);
  const Tensor ids =
      ops::sample(x,
                  {i32(rows), Tensor::from_vector(ts, {grid}), i32(ks),
                   Tensor::from_vector(ps, {grid}), Tensor::from_vector(us, {grid})},
                  banned, row_banned);
  std::vector<double> share(static_cast<size_t>(V), 0.0);
  for (const int32_t v : ids.to_vector<int32_t>()) share[static_cast<size_t>(v)] += 1.0 / grid;
  return share;
}

TEST(DecodingOps, SampleDrawsTheSoftmaxCutToTopKAndTopP) {
  // Row 0: logits of 6 tokens; row 1 the same reversed.
  const std::vector<float> l = {2.0f, 1.0f, 0.5f, 3.0f, -1.0f, 0.0f};
  std::vector<float> both = l;
  both.insert(both.end(), l.rbegin(), l.rend());
  const Tensor x = Tensor::from_vector(both, {2, 6});
  auto softmax = [&](const std::vector<int32_t>& keep, double t) {
    std::vector<double> p(6, 0.0);
    double z = 0;
    for (const int32_t v : keep) z += std::exp(l[static_cast<size_t>(v)] / t);
    for (const int32_t v : keep)
      p[static_cast<size_t>(v)] = std::exp(l[static_cast<size_t>(v)] / t) / z;
    return p;
  };
  const int64_t grid = 20000;
  auto expect_shares = [&](const std::vector<double>& got, const std::vector<double>& want,
                           const char* what) {
    for (size_t v = 0; v < 6; ++v) EXPECT_NEAR(got[v], want[v], 2.0 / grid) << what << " v=" << v;
  };
  // Plain softmax at temperature 0.7, token 4 banned everywhere.
  expect_shares(draw_shares(x, 0, 0.7, 0, 1.0, {4}, {}, grid), softmax({0, 1, 2, 3, 5}, 0.7),
                "temperature");
  // top_k 2: tokens 3 and 0 only.
  expect_shares(draw_shares(x, 0, 1.0, 2, 1.0, {}, {}, grid), softmax({3, 0}, 1.0), "top_k");
  // top_p 0.85 at temperature 1: p(3) = 0.605, p(3) + p(0) = 0.827, + p(1) = 0.909 -> {3, 0, 1}.
  const std::vector<double> full = softmax({0, 1, 2, 3, 4, 5}, 1.0);
  ASSERT_LT(full[3] + full[0], 0.85);
  ASSERT_GE(full[3] + full[0] + full[1], 0.85);
  expect_shares(draw_shares(x, 0, 1.0, 0, 0.85, {}, {}, grid), softmax({3, 0, 1}, 1.0), "top_p");
  // Row 1 is l reversed: {0, -1, 3, 0.5, 1, 2}. With its own banned column 2 (its best), top_k 1
  // draws column 5 (2.0) every time.
  EXPECT_EQ(draw_shares(x, 1, 1.0, 1, 1.0, {}, i32({-1, 2}), 64)[5], 1.0);
  // Every column banned: an error naming the op and row, not a token.
  EXPECT_NE(test::error_of([&] {
              draw_shares(x, 0, 1.0, 0, 1.0, {0, 1, 2, 3, 4}, i32({5, -1}), 4);
            }).find("sample: row 0 may emit no token"),
            std::string::npos);
}

TEST(DecodingOps, PickIotaAndAddIndex) {
  const Tensor x = iota({3, 4}, DType::kF32, 0);
  EXPECT_EQ(ops::pick(x, i32({2, 0, 1}), i32({3, 1, 0})).to_vector<float>(),
            (std::vector<float>{11, 1, 4}));
  EXPECT_EQ(ops::iota({2, 3}, Device::cpu()).to_vector<int32_t>(),
            (std::vector<int32_t>{0, 1, 2, 0, 1, 2}));
  EXPECT_EQ(ops::add_index(i32({0, 4, -1}), 1).to_vector<int32_t>(),
            (std::vector<int32_t>{1, 5, 0}));
  EXPECT_NE(test::error_of([&] { ops::pick(x, i32({3}), i32({0})); }).find("pick: (3, 0) outside"),
            std::string::npos);
  EXPECT_NE(test::error_of([&] { ops::add_index(x, 1); }).find("add_index"), std::string::npos);
}

TEST(DecodingOps, ScaleAndSumSquares) {
  Tensor x = Tensor::from_vector<float>({1, -2, 3}, {3});
  ops::scale_(x, 0.5);
  EXPECT_EQ(x.to_vector<float>(), (std::vector<float>{0.5f, -1, 1.5f}));
  EXPECT_DOUBLE_EQ(ops::sum_squares(x), 0.25 + 1 + 2.25);
  EXPECT_DOUBLE_EQ(ops::sum_squares(Tensor::from_vector<double>({1e-3, 2}, {2})), 1e-6 + 4);
}

TEST(DecodingOps, BadArgumentsNameTheOp) {
  Tensor cache = Tensor::zeros({2, 1, 3, 2});
  const Tensor src = Tensor::zeros({1, 1, 2, 2});
  EXPECT_NE(test::error_of([&] { ops::write_positions(cache, src, i32({2}), i32({0})); })
                .find("write_positions: rows[0] = 2"), std::string::npos);
  EXPECT_NE(test::error_of([&] { ops::write_positions(cache, src, i32({0}), i32({2})); })
                .find("outside the capacity 3"), std::string::npos);
  EXPECT_NE(test::error_of([&] { ops::copy_positions(cache, i32({0, 1}), i32({1, 0}), i32({1, 1})); })
                .find("copy_positions: slot"), std::string::npos);
  EXPECT_NE(test::error_of([&] { ops::top_k(Tensor::zeros({2, 3}), 0); }).find("top_k: k"),
            std::string::npos);
}

}  // namespace
}  // namespace attend
