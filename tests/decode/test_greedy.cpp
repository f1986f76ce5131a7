// Incremental decoding: the cached decoder step equals the full decoder over the prefix, and
// cached greedy search equals the uncached search (outputs, lengths, max-length cap).
#include <gtest/gtest.h>

#include "data/tokenizer.h"
#include "decode/greedy.h"

namespace attend {
namespace {

nn::TransformerConfig config(const std::string& norm, const std::string& positions, bool shared) {
  nn::TransformerConfig c = nn::TransformerConfig::preset("tiny");
  c.d_model = 32, c.ffn = 48, c.heads = 4, c.encoder_layers = 2, c.decoder_layers = 3;
  c.src_vocab = c.tgt_vocab = 23;
  c.norm = norm;
  c.positions = positions;
  c.share_embeddings = shared;
  c.max_positions = 64;
  return c;
}

data::Batch source_batch() {
  std::vector<data::Example> ex = {{{5, 6, 7, 8, 9}, {}}, {{10, 11}, {}}, {{12, 13, 14, 4}, {}}};
  return data::make_batch(ex, {0, 1, 2});
}

class Decode : public ::testing::TestWithParam<std::tuple<const char*, const char*, bool>> {};

TEST_P(Decode, CachedStepEqualsFullDecoder) {
  const auto [norm, positions, shared] = GetParam();
  nn::Transformer model(config(norm, positions, shared), 5);
  model.set_training(false);
  const data::Batch b = source_batch();
  const Tensor memory = model.encode(b.src, b.src_lengths, 0).value();
  nn::DecoderState st = model.start_decoding(memory, b.src_lengths);
  const std::vector<int32_t> seq = {2, 7, 9, 4, 15, 3, 8};  // any tokens, same for each row
  for (int64_t t = 1; t <= static_cast<int64_t>(seq.size()); ++t) {
    const Tensor step = model.decode_step(Tensor::from_vector(std::vector<int32_t>(3, seq[t - 1]), {3}), st);
    std::vector<int32_t> prefix;
    for (int r = 0; r < 3; ++r) prefix.insert(prefix.end(), seq.begin(), seq.begin() + t);
    const Tensor full = model.decode(Tensor::from_vector(prefix, {3, t}),
                                     Tensor::from_vector(std::vector<int32_t>(3, static_cast<int32_t>(t)), {3}),
                                     ag::Variable(memory), b.src_lengths, 0).value();
    const auto a = step.to_vector<float>();
    const auto w = full.slice(1, t - 1, t).contiguous().to_vector<float>();
    ASSERT_EQ(a.size(), w.size());
    for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], w[i], 2e-5) << "t=" << t << " i=" << i;
  }
}

TEST_P(Decode, CachedGreedyEqualsUncached) {
  const auto [norm, positions, shared] = GetParam();
  nn::Transformer model(config(norm, positions, shared), 11);
  model.set_training(false);
  const data::Batch b = source_batch();
  decode::GreedyOptions o;
  o.max_extra = 6;
  const auto cached = decode::greedy(model, b, o);
  const auto uncached = decode::greedy_reference(model, b, o);
  EXPECT_EQ(cached, uncached);
  const auto* sl = b.src_lengths.data<int32_t>();
  for (size_t r = 0; r < cached.size(); ++r) {
    EXPECT_LE(static_cast<int64_t>(cached[r].size()), sl[r] + o.max_extra);
    for (int32_t id : cached[r]) EXPECT_GT(id, data::kEosId);
  }
}

INSTANTIATE_TEST_SUITE_P(Configs, Decode,
                         ::testing::Values(std::make_tuple("post", "sinusoidal", true),
                                           std::make_tuple("pre", "learned", false),
                                           std::make_tuple("pre", "sinusoidal", true)));

TEST(Decode, SelectRowsKeepsChosenSentences) {
  nn::Transformer model(config("post", "sinusoidal", true), 3);
  model.set_training(false);
  const data::Batch b = source_batch();
  const Tensor memory = model.encode(b.src, b.src_lengths, 0).value();
  nn::DecoderState all = model.start_decoding(memory, b.src_lengths);
  nn::DecoderState one = model.start_decoding(memory, b.src_lengths);
  const Tensor t0 = Tensor::from_vector<int32_t>({2, 2, 2}, {3});
  const Tensor h_all0 = model.decode_step(t0, all);
  (void)model.decode_step(t0, one);
  nn::Transformer::select_rows(one, {2});
  const Tensor h_all = model.decode_step(Tensor::from_vector<int32_t>({6, 7, 8}, {3}), all);
  const Tensor h_one = model.decode_step(Tensor::from_vector<int32_t>({8}, {1}), one);
  const auto a = h_all.slice(0, 2, 3).contiguous().to_vector<float>(), o = h_one.to_vector<float>();
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], o[i], 1e-6);
  (void)h_all0;
}

}  // namespace
}  // namespace attend
