// Incremental decoding: the cached decoder step equals the full decoder over the prefix, and
// cached greedy search equals the uncached search (outputs, lengths, max-length cap).
#include <gtest/gtest.h>

#include "data/tokenizer.h"
#include "nn/transformer.h"
#include "decode/greedy.h"

namespace attend {
namespace {

nn::TransformerConfig config(const std::string& norm, const std::string& positions, bool shared) {
  nn::TransformerConfig c = nn::TransformerConfig::preset("tiny");
  c.d_model = 32, c.ffn = 48, c.heads = 4, c.encoder_layers = 2, c.decoder_layers = 3;
  c.src_vocab = c.tgt_vocab = 23;
  c.norm = nn::parse_norm(norm);
  c.positions = nn::parse_positions(positions);
  c.share_embeddings = shared;
  c.max_positions = 64;
  return c;
}

using Sources = std::vector<std::vector<int32_t>>;
Sources source_batch() { return {{5, 6, 7, 8, 9}, {10, 11}, {12, 13, 14, 4}}; }

// The padded source batch of source_batch(): ids [3, 5] and lengths [3].
std::pair<Tensor, Tensor> padded() {
  return {Tensor::from_vector<int32_t>({5, 6, 7, 8, 9, 10, 11, 0, 0, 0, 12, 13, 14, 4, 0}, {3, 5}),
          Tensor::from_vector<int32_t>({5, 2, 4}, {3})};
}

Tensor i32(const std::vector<int32_t>& v) {
  return Tensor::from_vector(v, {static_cast<int64_t>(v.size())});
}

class Decode : public ::testing::TestWithParam<std::tuple<const char*, const char*, bool>> {};

TEST_P(Decode, CachedStepEqualsFullDecoder) {
  const auto [norm, positions, shared] = GetParam();
  nn::EncoderDecoder model(config(norm, positions, shared), 5);
  model.set_training(false);
  const auto [src, src_lengths] = padded();
  const Tensor memory = model.encode(src, src_lengths, 0).value();
  nn::KvCache cache = model.make_cache();
  cache.reserve(6, 8, 4, 5);
  // Rows use slots 5, 0, 3 and encoder slots 2, 0, 1: nothing depends on where they live.
  model.write_memory(memory, i32({2, 0, 1}), cache);
  const std::vector<int32_t> seq = {2, 7, 9, 4, 15, 3, 8};  // any tokens, same for each row
  for (int64_t t = 1; t <= static_cast<int64_t>(seq.size()); ++t) {
    const int32_t p = static_cast<int32_t>(t - 1);
    const nn::DecodeRows rows{i32({seq[t - 1], seq[t - 1], seq[t - 1]}), i32({p, p, p}),
                              i32({5, 0, 3}), i32({2, 0, 1}), src_lengths, p + 1};
    const Tensor step = model.decode_rows(rows, cache);
    std::vector<int32_t> prefix;
    for (int r = 0; r < 3; ++r) prefix.insert(prefix.end(), seq.begin(), seq.begin() + t);
    const Tensor full = model.decode(Tensor::from_vector(prefix, {3, t}),
                                     Tensor::from_vector(std::vector<int32_t>(3, static_cast<int32_t>(t)), {3}),
                                     ag::Variable(memory), src_lengths, 0).value();
    const auto a = step.to_vector<float>();
    const auto w = full.slice(1, t - 1, t).contiguous().to_vector<float>();
    ASSERT_EQ(a.size(), w.size());
    for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], w[i], 2e-5) << "t=" << t << " i=" << i;
  }
}

TEST_P(Decode, CachedGreedyEqualsUncached) {
  const auto [norm, positions, shared] = GetParam();
  nn::EncoderDecoder model(config(norm, positions, shared), 11);
  model.set_training(false);
  const Sources b = source_batch();
  decode::GreedyOptions o;
  o.max_extra = 6;
  const auto cached = decode::greedy(model, b, o);
  const auto uncached = decode::greedy_reference(model, b, o);
  EXPECT_EQ(cached, uncached);
  for (size_t r = 0; r < cached.size(); ++r) {
    EXPECT_LE(static_cast<int64_t>(cached[r].size()), static_cast<int64_t>(b[r].size()) + o.max_extra);
    for (int32_t id : cached[r]) EXPECT_GT(id, data::kEosId);
  }
}

INSTANTIATE_TEST_SUITE_P(Configs, Decode,
                         ::testing::Values(std::make_tuple("post", "sinusoidal", true),
                                           std::make_tuple("pre", "learned", false),
                                           std::make_tuple("pre", "sinusoidal", true)));

TEST(Decode, RowsAtDifferentPositionsAndCopiedSlots) {
  // Row 1 starts two steps after row 0 (a request joining a running batch); a copied slot
  // continues exactly like its original.
  nn::EncoderDecoder model(config("pre", "learned", false), 3);
  model.set_training(false);
  const auto [src, src_lengths] = padded();
  const Tensor memory = model.encode(src, src_lengths, 0).value();
  nn::KvCache joined = model.make_cache(), alone = model.make_cache();
  joined.reserve(3, 6, 3, 5);
  alone.reserve(1, 6, 3, 5);
  model.write_memory(memory, i32({0, 1, 2}), joined);
  model.write_memory(memory, i32({0, 1, 2}), alone);
  const std::vector<int32_t> seq = {2, 9, 4, 15, 6};
  auto row = [&](int32_t token, int32_t pos, int32_t slot, int32_t mem, int32_t len) {
    return nn::DecodeRows{i32({token}), i32({pos}), i32({slot}), i32({mem}), i32({len}), pos + 1};
  };
  // Alone: sentence 2 decodes seq from position 0.
  std::vector<Tensor> want;
  for (int32_t t = 0; t < 4; ++t) want.push_back(model.decode_rows(row(seq[t], t, 0, 2, 4), alone));
  // Joined: sentence 0 runs two steps alone, then sentence 2 joins in slot 1.
  for (int32_t t = 0; t < 2; ++t) (void)model.decode_rows(row(seq[t], t, 0, 0, 5), joined);
  for (int32_t t = 0; t < 4; ++t) {
    const nn::DecodeRows both{i32({seq[t + 2 > 4 ? 4 : t + 2], seq[t]}), i32({t + 2, t}), i32({0, 1}),
                              i32({0, 2}), i32({5, 4}), t + 3};
    const Tensor h = model.decode_rows(both, joined);
    const auto a = h.slice(0, 1, 2).contiguous().to_vector<float>(), w = want[t].to_vector<float>();
    for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], w[i], 2e-5) << "t=" << t;
    if (t == 1) {  // branch: slot 2 gets a copy of slot 1's two positions and continues alone
      joined.copy_slots(i32({1}), i32({2}), i32({2}));
      const Tensor c = model.decode_rows(row(seq[2], 2, 2, 2, 4), joined);
      const auto x = c.to_vector<float>(), y = want[2].to_vector<float>();
      for (size_t i = 0; i < x.size(); ++i) ASSERT_NEAR(x[i], y[i], 2e-5);
    }
  }
}

}  // namespace
}  // namespace attend
