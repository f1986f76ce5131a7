// Beam search and sampling: beam 1 equals greedy search; a beam wide enough to keep every
// hypothesis finds exactly the sequences, log-probabilities and ranking of an exhaustive search
// scored with the full (uncached) decoder; batching does not change results; limits, n-best
// order, min_length, sampling determinism and option errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>

#include "core/error.h"
#include "data/tokenizer.h"
#include "decode/greedy.h"
#include "decode/session.h"
#include "ops/ops.h"
#include "util.h"

namespace attend {
namespace {

nn::TransformerConfig config(const std::string& norm, const std::string& positions, bool shared,
                             int64_t vocab = 23) {
  nn::TransformerConfig c = nn::TransformerConfig::preset("tiny");
  c.d_model = 32, c.ffn = 48, c.heads = 4, c.encoder_layers = 2, c.decoder_layers = 3;
  c.src_vocab = c.tgt_vocab = vocab;
  c.norm = nn::parse_norm(norm);
  c.positions = nn::parse_positions(positions);
  c.share_embeddings = shared;
  c.max_positions = 64;
  return c;
}

// Makes EOS likelier so that outputs end at different lengths (a random model rarely stops).
void boost_eos(nn::EncoderDecoder& model, float factor) {
  for (auto& [name, p] : model.named_parameters()) {
    const bool out = name.ends_with("embed_tokens.weight") || name.ends_with("output_projection.weight");
    if (!out || p.value().size(0) != model.config().tgt_vocab) continue;
    float* w = p.value().data<float>();
    const int64_t D = p.value().size(1);
    for (int64_t d = 0; d < D; ++d) w[data::kEosId * D + d] *= factor;
  }
}

using Sources = std::vector<std::vector<int32_t>>;

Sources sources() { return {{5, 6, 7, 8, 9}, {10, 11}, {12, 13, 14, 4}, {15, 16, 17, 18, 19, 20, 21}}; }

Sources source_batch(const std::vector<int64_t>& rows = {0, 1, 2, 3}) {
  Sources out;
  for (int64_t r : rows) out.push_back(sources()[static_cast<size_t>(r)]);
  return out;
}

std::vector<int32_t> lengths_of(const Sources& b) {
  std::vector<int32_t> l;
  for (const auto& s : b) l.push_back(static_cast<int32_t>(s.size()));
  return l;
}

class Search : public ::testing::TestWithParam<std::tuple<const char*, const char*, bool>> {};

TEST_P(Search, BeamOneEqualsGreedy) {
  const auto [norm, positions, shared] = GetParam();
  int ended_early = 0;
  for (uint64_t seed : {3u, 11u, 19u, 23u}) {
    nn::EncoderDecoder model(config(norm, positions, shared), seed);
    model.set_training(false);
    boost_eos(model, 2.0f + static_cast<float>(seed % 5));
    const Sources b = source_batch();
    decode::GreedyOptions g;
    g.max_extra = 6;
    decode::SearchOptions o;
    o.beam = 1;
    o.max_extra = 6;
    const auto greedy = decode::greedy(model, b, g);
    const auto beam = decode::search(model, b, o);
    ASSERT_EQ(beam.size(), greedy.size());
    const std::vector<int32_t> sl = lengths_of(b);
    for (size_t r = 0; r < greedy.size(); ++r) {
      ASSERT_EQ(beam[r].size(), 1u);
      EXPECT_EQ(beam[r][0].tokens, greedy[r]) << "seed " << seed << " row " << r;
      if (static_cast<int64_t>(greedy[r].size()) < sl[r] + 6) ++ended_early;
    }
  }
  EXPECT_GT(ended_early, 0) << "no output ended with EOS: the test would not cover finishing";
}

TEST_P(Search, BatchedEqualsOneSentenceAtATime) {
  const auto [norm, positions, shared] = GetParam();
  nn::EncoderDecoder model(config(norm, positions, shared), 7);
  model.set_training(false);
  boost_eos(model, 2.5f);
  decode::SearchOptions o;
  o.beam = 4;
  o.n_best = 4;
  o.max_extra = 5;
  const auto all = decode::search(model, source_batch(), o);
  for (int64_t r = 0; r < 4; ++r) {
    const auto one = decode::search(model, source_batch({r}), o);
    ASSERT_EQ(one[0].size(), all[r].size());
    for (size_t k = 0; k < one[0].size(); ++k) {
      EXPECT_EQ(one[0][k].tokens, all[r][k].tokens) << "row " << r << " rank " << k;
      EXPECT_NEAR(one[0][k].score, all[r][k].score, 1e-4);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Configs, Search,
                         ::testing::Values(std::make_tuple("post", "sinusoidal", true),
                                           std::make_tuple("pre", "learned", false),
                                           std::make_tuple("pre", "sinusoidal", true)));

// log p(y_1 .. y_n [EOS]) under the full decoder, re-run over each prefix (no cache).
double sequence_log_prob(const nn::EncoderDecoder& model, const Tensor& src_lengths, const Tensor& memory,
                         const std::vector<int32_t>& tokens, bool eos) {
  std::vector<int32_t> in = {data::kBosId};
  in.insert(in.end(), tokens.begin(), tokens.end());
  std::vector<int32_t> out = tokens;
  if (eos) out.push_back(data::kEosId);
  const int64_t T = static_cast<int64_t>(out.size());
  in.resize(static_cast<size_t>(T));
  const Tensor h = model.decode(Tensor::from_vector(in, {1, T}),
                                Tensor::from_vector<int32_t>({static_cast<int32_t>(T)}, {1}),
                                ag::Variable(memory), src_lengths, 0).value();
  const Tensor lp = ops::log_softmax(model.project(ag::Variable(h)).value());
  const int64_t V = lp.size(1);
  double sum = 0;
  for (int64_t t = 0; t < T; ++t) sum += lp.data<float>()[t * V + out[t]];
  return sum;
}

TEST(Search, WideBeamFindsTheExhaustiveRanking) {
  // Vocabulary: pad, unk, bos, eos and two real tokens; source of 2, max_extra 2 -> at most 4
  // output tokens. The 31 possible outputs: 0..3 tokens + EOS, or 4 tokens cut at the limit.
  nn::EncoderDecoder model(config("pre", "sinusoidal", true, 6), 21);
  model.set_training(false);
  boost_eos(model, 1.5f);
  const Sources b = {{4, 5}};
  const Tensor src_lengths = Tensor::from_vector<int32_t>({2}, {1});
  const Tensor memory = model.encode(Tensor::from_vector<int32_t>({4, 5}, {1, 2}), src_lengths, 0).value();
  decode::SearchOptions o;
  o.beam = o.n_best = 64;
  o.alpha = 0.6;
  o.max_extra = 2;
  const auto found = decode::search(model, b, o)[0];

  std::vector<decode::Hypothesis> want;
  std::function<void(std::vector<int32_t>)> grow = [&](std::vector<int32_t> y) {
    if (y.size() == 4) {
      decode::Hypothesis h{y, 0, sequence_log_prob(model, src_lengths, memory, y, false)};
      h.score = h.log_prob / decode::length_penalty(4, o.alpha);
      want.push_back(h);
      return;
    }
    decode::Hypothesis h{y, 0, sequence_log_prob(model, src_lengths, memory, y, true)};
    h.score = h.log_prob / decode::length_penalty(static_cast<int64_t>(y.size()) + 1, o.alpha);
    want.push_back(h);
    for (int32_t v : {4, 5}) {
      auto z = y;
      z.push_back(v);
      grow(z);
    }
  };
  grow({});
  std::sort(want.begin(), want.end(), [](const auto& a, const auto& c) { return a.score > c.score; });
  ASSERT_EQ(want.size(), 31u);
  ASSERT_EQ(found.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(found[i].tokens, want[i].tokens) << "rank " << i;
    EXPECT_NEAR(found[i].log_prob, want[i].log_prob, 1e-4) << "rank " << i;
    EXPECT_NEAR(found[i].score, want[i].score, 1e-4) << "rank " << i;
  }
  // A beam of 2 returns the best of what it saw, which the exhaustive ranking bounds.
  o.beam = 2, o.n_best = 2;
  const auto narrow = decode::search(model, b, o)[0];
  ASSERT_EQ(narrow.size(), 2u);
  EXPECT_LE(narrow[0].score, want[0].score + 1e-6);
  EXPECT_GE(narrow[0].score, narrow[1].score);
}

TEST(Search, LimitsOrderAndMinLength) {
  nn::EncoderDecoder model(config("post", "sinusoidal", true), 5);
  model.set_training(false);
  boost_eos(model, 4.0f);
  const Sources b = source_batch();
  const std::vector<int32_t> sl = lengths_of(b);
  for (int64_t min_length : {0, 3}) {
    decode::SearchOptions o;
    o.beam = 5;
    o.n_best = 3;
    o.max_extra = 4;
    o.min_length = min_length;
    const auto res = decode::search(model, b, o);
    for (size_t r = 0; r < res.size(); ++r) {
      ASSERT_EQ(res[r].size(), 3u);
      for (size_t k = 0; k < res[r].size(); ++k) {
        const auto& h = res[r][k];
        EXPECT_LE(static_cast<int64_t>(h.tokens.size()), sl[r] + o.max_extra);
        EXPECT_GE(static_cast<int64_t>(h.tokens.size()), min_length);
        for (int32_t id : h.tokens) EXPECT_GT(id, data::kEosId);
        EXPECT_LE(h.log_prob, 0.0);
        if (k > 0) {
          EXPECT_GE(res[r][k - 1].score, h.score);
        }
      }
    }
  }
  // max_length caps every output whatever its source's length; with min_length equal to it
  // every output has exactly that length (how benchmarks fix the work).
  decode::SearchOptions o;
  o.beam = 4;
  o.max_extra = 50;
  o.max_length = o.min_length = 3;
  for (const auto& hyps : decode::search(model, b, o)) EXPECT_EQ(hyps[0].tokens.size(), 3u);
  o.min_length = 0;
  o.max_length = -1;
  EXPECT_THROW(o.validate(), Error);
}

TEST(Search, SamplingIsSeededAndTruncates) {
  nn::EncoderDecoder model(config("pre", "sinusoidal", true), 9);
  model.set_training(false);
  boost_eos(model, 2.0f);
  const Sources b = source_batch();
  decode::GreedyOptions g;
  g.max_extra = 6;
  const auto greedy = decode::greedy(model, b, g);
  decode::SearchOptions o;
  o.beam = 1;
  o.max_extra = 6;
  o.sample = true;
  o.seed = 1;
  auto tokens = [&](const decode::SearchOptions& opt, const Sources& batch) {
    std::vector<std::vector<int32_t>> t;
    for (const auto& h : decode::search(model, batch, opt)) t.push_back(h[0].tokens);
    return t;
  };
  const auto a = tokens(o, b);
  EXPECT_EQ(a, tokens(o, b)) << "same seed, same samples";
  const auto alone = decode::search(model, source_batch({2}), o, {2});  // stream 2, as in the batch
  EXPECT_EQ(a[2], alone[0][0].tokens) << "a sentence's samples do not depend on its batch";
  o.seed = 2;
  EXPECT_NE(a, tokens(o, b)) << "another seed, other samples";
  o.top_k = 1;
  EXPECT_EQ(tokens(o, b), greedy) << "top-k 1 is greedy";
  o.top_k = 0;
  o.top_p = 1e-6;
  EXPECT_EQ(tokens(o, b), greedy) << "a tiny nucleus is greedy";
  o.top_p = 1;
  o.temperature = 1e-4;
  EXPECT_EQ(tokens(o, b), greedy) << "temperature -> 0 is greedy";
}

TEST(Search, EmptySourcesAndInputOrder) {
  nn::EncoderDecoder model(config("post", "sinusoidal", true), 4);
  model.set_training(false);
  Sources ex = sources();
  ex.insert(ex.begin() + 1, std::vector<int32_t>{});
  decode::SearchOptions o;
  o.beam = 3;
  o.max_extra = 3;
  const auto all = decode::search_all(model, ex, 7, o);  // small batches, reordered by length
  ASSERT_EQ(all.size(), ex.size());
  EXPECT_TRUE(all[1][0].tokens.empty());
  const auto direct = decode::search(model, source_batch(), o);
  const size_t map[] = {0, 2, 3, 4};
  for (size_t r = 0; r < 4; ++r) EXPECT_EQ(all[map[r]][0].tokens, direct[r][0].tokens) << r;
}

TEST(Search, BadOptionsNameTheOption) {
  nn::EncoderDecoder model(config("post", "sinusoidal", true), 4);
  model.set_training(false);
  const Sources b = source_batch();
  auto error = [&](auto mutate) {
    decode::SearchOptions o;
    mutate(o);
    return test::error_of([&] { decode::search(model, b, o); });
  };
  EXPECT_NE(error([](auto& o) { o.beam = 0; }).find("beam must be >= 1"), std::string::npos);
  EXPECT_NE(error([](auto& o) { o.n_best = 5; }).find("n_best"), std::string::npos);
  EXPECT_NE(error([](auto& o) { o.alpha = -1; }).find("alpha"), std::string::npos);
  EXPECT_NE(error([](auto& o) { o.sample = true; }).find("beam 1"), std::string::npos);
  EXPECT_NE(error([](auto& o) { o.sample = true, o.beam = 1, o.temperature = 0; }).find("temperature"),
            std::string::npos);
  EXPECT_NE(error([](auto& o) { o.sample = true, o.beam = 1, o.top_p = 0; }).find("top_p"),
            std::string::npos);
}

}  // namespace
}  // namespace attend
