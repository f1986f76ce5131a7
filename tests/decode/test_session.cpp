// Step-level decoding sessions: requests that join a running batch (with other search options
// in it) and leave it get the results they get alone; admission errors; two threads running
// their own sessions on one shared model get the results of one thread (also built under
// ThreadSanitizer, see tests/CMakeLists.txt).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <thread>

#include "decode/session.h"
#include "decode/translator.h"
#include "util.h"

namespace attend {
namespace {

using Sources = std::vector<std::vector<int32_t>>;

std::unique_ptr<nn::EncoderDecoder> make_model(uint64_t seed) {
  nn::TransformerConfig c = nn::TransformerConfig::preset("tiny");
  c.d_model = 32, c.ffn = 48, c.heads = 4, c.encoder_layers = 2, c.decoder_layers = 2;
  c.src_vocab = c.tgt_vocab = 29;
  c.norm = nn::Norm::kPre;
  c.max_positions = 64;
  auto m = std::make_unique<nn::EncoderDecoder>(c, seed);
  m->set_training(false);
  return m;
}

Sources sources() {
  return {{5, 6, 7, 8, 9}, {10, 11}, {12, 13, 14, 4}, {15, 16, 17, 18, 19, 20, 21}, {22, 23, 24}};
}

decode::SearchOptions options(int64_t beam, bool sample = false) {
  decode::SearchOptions o;
  o.beam = beam;
  o.n_best = beam;
  o.max_extra = 7;
  o.sample = sample;
  o.seed = 5;
  return o;
}

void expect_same(const std::vector<decode::Hypothesis>& got,
                 const std::vector<decode::Hypothesis>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t k = 0; k < got.size(); ++k) {
    EXPECT_EQ(got[k].tokens, want[k].tokens) << what << " rank " << k;
    EXPECT_NEAR(got[k].score, want[k].score, 1e-4) << what << " rank " << k;
  }
}

TEST(Session, RequestsJoinAndLeaveARunningBatch) {
  const auto owned = make_model(7);
  const nn::EncoderDecoder& model = *owned;
  const Sources src = sources();
  // Mixed options: beam 4, greedy, sampling, beam 2, beam 3.
  const std::vector<decode::SearchOptions> opts = {options(4), options(1), options(1, true),
                                                   options(2), options(3)};
  std::vector<std::vector<decode::Hypothesis>> alone;
  for (size_t i = 0; i < src.size(); ++i)
    alone.push_back(decode::search(model, {src[i]}, opts[i], {i})[0]);

  decode::Session s(model);
  std::vector<std::vector<decode::Hypothesis>> got(src.size());
  std::vector<int64_t> finished_at(src.size(), -1);
  auto collect = [&](int64_t step) {
    for (auto& r : s.retire()) {
      got[static_cast<size_t>(r.id)] = std::move(r.hypotheses);
      finished_at[static_cast<size_t>(r.id)] = step;
    }
  };
  s.admit({{src[0], opts[0], 0, 0}});
  s.step();
  s.step();
  collect(2);
  // Two more join after two steps, the rest after four (one of them alone in its admit call).
  s.admit({{src[1], opts[1], 1, 1}, {src[2], opts[2], 2, 2}});
  EXPECT_EQ(s.active_requests(), 3);
  s.step();
  s.step();
  collect(4);
  s.admit({{src[3], opts[3], 3, 3}});
  s.admit({{src[4], opts[4], 4, 4}});
  int64_t step = 4;
  while (!s.idle()) {
    s.step();
    collect(++step);
  }
  EXPECT_EQ(s.active_requests(), 0);
  for (size_t i = 0; i < src.size(); ++i) {
    EXPECT_GE(finished_at[i], 0) << "request " << i << " never retired";
    expect_same(got[i], alone[i], "request " + std::to_string(i));
  }
  // The session is reusable once idle, and gives the same again.
  s.admit({{src[3], opts[0], 3, 9}});
  while (!s.idle()) s.step();
  const auto again = s.retire();
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].id, 9);
  expect_same(again[0].hypotheses, decode::search(model, {src[3]}, opts[0])[0], "reused");
}

TEST(Session, CancelledRequestsLeaveAndFreeTheirSlots) {
  const auto owned = make_model(5);
  const nn::EncoderDecoder& model = *owned;
  const Sources src = sources();
  const decode::SearchOptions o = options(3);
  std::vector<std::vector<decode::Hypothesis>> alone;
  for (size_t i = 0; i < src.size(); ++i)
    alone.push_back(decode::search(model, {src[i]}, o, {i})[0]);

  decode::Session s(model);
  s.admit({{src[0], o, 0, 0}, {src[1], o, 1, 1}, {src[2], o, 2, 2}});
  s.step();
  s.step();
  const int64_t rows_before = s.live_rows();
  EXPECT_TRUE(s.cancel(1));   // mid-batch
  EXPECT_FALSE(s.cancel(1));  // already gone
  EXPECT_FALSE(s.cancel(42));
  EXPECT_LT(s.live_rows(), rows_before);
  EXPECT_EQ(s.active_requests(), 2);
  // Newcomers take the freed entries and slots; the others are undisturbed.
  for (int round = 0; round < 3; ++round) {
    s.admit({{src[3], o, 3, 10 + round}});
    s.step();
    EXPECT_TRUE(s.cancel(10 + round));
  }
  s.admit({{src[4], o, 4, 4}});
  std::vector<std::vector<decode::Hypothesis>> got(src.size());
  std::vector<bool> seen(src.size(), false);
  while (!s.idle()) {
    s.step();
    for (auto& r : s.retire()) {
      ASSERT_LT(r.id, 5) << "a cancelled request gave a result";
      seen[static_cast<size_t>(r.id)] = true;
      got[static_cast<size_t>(r.id)] = std::move(r.hypotheses);
    }
  }
  for (const size_t i : {0u, 2u, 4u}) {
    EXPECT_TRUE(seen[i]) << "request " << i;
    expect_same(got[i], alone[i], "request " + std::to_string(i));
  }
  EXPECT_FALSE(seen[1]);
  EXPECT_EQ(s.active_requests(), 0);
  // After the cancels, new requests still decode as they do alone.
  s.admit({{src[3], o, 3, 20}, {src[1], o, 1, 21}});
  while (!s.idle()) s.step();
  for (auto& r : s.retire()) expect_same(r.hypotheses, alone[r.id == 20 ? 3 : 1], "after cancels");
}

TEST(Session, AdmitRejectsBadRequestsWholly) {
  const auto owned = make_model(3);
  const nn::EncoderDecoder& model = *owned;
  decode::Session s(model);
  decode::SearchOptions bad = options(2);
  bad.n_best = 3;
  EXPECT_NE(test::error_of([&] {
              s.admit({{{5, 6}, options(2), 0, 0}, {{7}, bad, 1, 1}});
            }).find("n_best"),
            std::string::npos);
  EXPECT_NE(test::error_of([&] {
              s.admit({{{}, options(2), 0, 4}});
            }).find("request 4"),
            std::string::npos);
  EXPECT_NE(test::error_of([&] {
              s.admit({{{5, 99}, options(2), 0, 0}});
            }).find("99"),
            std::string::npos);
  EXPECT_TRUE(s.idle());
  EXPECT_EQ(s.active_requests(), 0);
}

// A target prefix (CTranslate2's target_prefix): its tokens are forced one per step and scored
// like chosen ones, then the search goes on from them.
TEST(Session, PrefixIsForcedAndTheSearchGoesOnFromIt) {
  const auto owned = make_model(13);
  const nn::EncoderDecoder& model = *owned;
  const Sources src = sources();
  // Forcing the first tokens greedy search chose gives greedy search's output and score.
  const auto greedy = decode::search_all(model, src, 1000, options(1));
  Sources chosen;
  for (const auto& g : greedy)
    chosen.push_back(
        {g[0].tokens.begin(), g[0].tokens.begin() + std::min<size_t>(2, g[0].tokens.size())});
  const auto forced = decode::search_all(model, src, 1000, options(1), chosen);
  int64_t with_prefix = 0;
  for (size_t i = 0; i < src.size(); ++i) {
    expect_same(forced[i], greedy[i], "greedy with its own prefix, sentence " + std::to_string(i));
    with_prefix += !chosen[i].empty();
  }
  EXPECT_GE(with_prefix, 3);  // not a vacuous comparison
  // Any other prefix: every hypothesis of a beam search, a sampled one, starts with it.
  const Sources other(src.size(), std::vector<int32_t>{5, 6, 7});
  for (const auto& o : {options(4), options(1, true)}) {
    const auto got = decode::search_all(model, src, 1000, o, other);
    for (size_t i = 0; i < src.size(); ++i)
      for (const auto& h : got[i]) {
        ASSERT_GE(h.tokens.size(), 3u);
        EXPECT_EQ(std::vector<int32_t>(h.tokens.begin(), h.tokens.begin() + 3), other[i]);
        EXPECT_LT(h.log_prob, 0);
      }
  }
  // Its score is that of the same tokens chosen freely: a prefix equal to a whole output of
  // beam 1 gives that output back whatever comes after.
  const Sources whole = {greedy[0][0].tokens};
  const auto again = decode::search_all(model, {src[0]}, 1000, options(1), whole);
  expect_same(again[0], greedy[0], "a whole output as the prefix");
  // Bad prefixes: an id that is no output token, one longer than the outputs may be.
  decode::Session s(model);
  const nn::TransformerConfig& c = model.config();
  EXPECT_NE(test::error_of([&] {
              s.admit({{{5, 6}, options(2), 0, 3, {7, c.eos_id}}});
            }).find("prefix id"),
            std::string::npos);
  EXPECT_NE(test::error_of([&] {
              s.admit({{{5, 6}, options(2), 0, 3, std::vector<int32_t>(13, 7)}});
            }).find("prefix of 13 tokens"),
            std::string::npos);
  EXPECT_TRUE(s.idle());
}

TEST(Session, ThreadsShareOneModel) {
  const auto owned = make_model(11);
  const nn::EncoderDecoder& model = *owned;
  Sources a = sources(), b = sources();
  std::reverse(b.begin(), b.end());
  const auto want_a = decode::search_all(model, a, 12, options(3));
  const auto want_b = decode::search_all(model, b, 1000, options(2));
  std::vector<std::vector<decode::Hypothesis>> got_a, got_b;
  for (int round = 0; round < 3; ++round) {
    std::thread ta([&] { got_a = decode::search_all(model, a, 12, options(3)); });
    std::thread tb([&] { got_b = decode::search_all(model, b, 1000, options(2)); });
    ta.join();
    tb.join();
    ASSERT_EQ(got_a.size(), want_a.size());
    ASSERT_EQ(got_b.size(), want_b.size());
    for (size_t i = 0; i < want_a.size(); ++i) {
      expect_same(got_a[i], want_a[i], "thread a, sentence " + std::to_string(i));
      expect_same(got_b[i], want_b[i], "thread b, sentence " + std::to_string(i));
    }
  }
}

// The weights shown to a server's users: one teacher-forced pass over the greedy output.
// Its logits pick the same tokens the cached search picked (the pass is aligned with decoding),
// recording changes no output, and each layer's weights are probabilities over the source.
TEST(CrossAttention, WeightsOfTheTeacherForcedPassBehindATranslation) {
  const auto owned = make_model(7);
  const nn::EncoderDecoder& model = *owned;
  const nn::TransformerConfig& c = model.config();
  const std::vector<int32_t> source = {15, 16, 17, 18, 19, 20, 21};
  const auto found = decode::search(model, {source}, options(1));
  const std::vector<int32_t>& target = found[0][0].tokens;
  ASSERT_FALSE(target.empty());
  const auto S = static_cast<int64_t>(source.size()), T = static_cast<int64_t>(target.size()) + 1;

  const std::vector<Tensor> w = decode::cross_attention(model, source, target);
  ASSERT_EQ(static_cast<int64_t>(w.size()), c.decoder_layers);
  for (const Tensor& layer : w) {
    ASSERT_EQ(layer.shape(), (Shape{c.heads, T, S}));
    const std::vector<float> p = layer.to_vector<float>();
    for (int64_t row = 0; row < c.heads * T; ++row) {
      double sum = 0;
      for (int64_t s = 0; s < S; ++s) {
        EXPECT_GE(p[static_cast<size_t>(row * S + s)], 0.0f);
        sum += p[static_cast<size_t>(row * S + s)];
      }
      EXPECT_NEAR(sum, 1.0, 1e-5) << "row " << row;
    }
  }
  // Head 0 of layer 0 differs between two target positions: the rows are not one row copied.
  const std::vector<float> p0 = w[0].to_vector<float>();
  double diff = 0;
  for (int64_t s = 0; s < S; ++s)
    diff += std::abs(p0[static_cast<size_t>(s)] - p0[static_cast<size_t>((T - 1) * S + s)]);
  EXPECT_GT(diff, 1e-4);

  std::vector<int32_t> tgt_in = {c.bos_id};
  tgt_in.insert(tgt_in.end(), target.begin(), target.end());
  const Tensor src = Tensor::from_vector(source, {1, S});
  const Tensor src_len = Tensor::from_vector(std::vector<int32_t>{static_cast<int32_t>(S)}, {1});
  const Tensor tgt = Tensor::from_vector(tgt_in, {1, T});
  const Tensor tgt_len = Tensor::from_vector(std::vector<int32_t>{static_cast<int32_t>(T)}, {1});
  const std::vector<float> plain =
      model.forward(src, src_len, tgt, tgt_len, 0).value().to_vector<float>();
  std::vector<float> probed;
  {
    nn::CrossAttentionProbe probe;
    probed = model.forward(src, src_len, tgt, tgt_len, 0).value().to_vector<float>();
    EXPECT_EQ(static_cast<int64_t>(probe.weights().size()), c.decoder_layers);
  }
  EXPECT_EQ(plain, probed);
  const int64_t V = c.tgt_vocab;
  for (int64_t t = 0; t + 1 < T; ++t) {
    int32_t best = -1;
    float top = -INFINITY;
    for (int32_t v = 0; v < V; ++v) {
      if (v == c.pad_id || v == c.unk_id || v == c.bos_id) continue;
      if (plain[static_cast<size_t>(t * V + v)] > top)
        top = plain[static_cast<size_t>(t * V + v)], best = v;
    }
    EXPECT_EQ(best, target[static_cast<size_t>(t)]) << "position " << t;
  }
  EXPECT_THROW(decode::cross_attention(model, {}, target), Error);
  EXPECT_THROW(decode::cross_attention(model, source, {static_cast<int32_t>(V)}), Error);
}

}  // namespace
}  // namespace attend
