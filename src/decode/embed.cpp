// Embeddings and hidden states of an encoder-only model (see embed.h).
#include "decode/embed.h"

#include <cmath>

#include "core/error.h"
#include "core/utf8.h"
#include "data/batcher.h"

namespace attend::decode {

Pooling parse_pooling(const std::string& name, const std::string& flag) {
  if (name == "mean") return Pooling::kMean;
  if (name == "cls") return Pooling::kCls;
  ATTEND_FAIL("{}: expected 'mean' or 'cls', got '{}'", flag, name);
}

std::vector<int32_t> encoder_ids(const nn::EncoderOnly& model, const data::Tokenizer& tokenizer,
                                 const std::string& text, const std::string& where) {
  ATTEND_CHECK(valid_utf8(text), "{}: invalid UTF-8", where);
  return data::mlm_sentence(tokenizer, text, model.config().max_positions).tgt;
}

namespace {

// Encodes every text in length-sorted batches; calls take(i, hidden [T_i, D]) for each text.
// Returns the ids each text was read as.
template <typename Take>
std::vector<std::vector<int32_t>> encode_all(const nn::EncoderOnly& model,
                                             const data::Tokenizer& tokenizer,
                                             const std::vector<std::string>& texts,
                                             const EmbedOptions& o, const std::string& input_name,
                                             Take&& take) {
  ATTEND_CHECK(o.batch_tokens >= 1, "embed: batch_tokens must be >= 1, got {}", o.batch_tokens);
  std::vector<data::Example> examples;
  examples.reserve(texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    data::Example e;
    e.layout = data::Layout::kSequence;
    e.tgt = encoder_ids(model, tokenizer, texts[i], input_name + "[" + std::to_string(i) + "]");
    examples.push_back(std::move(e));
  }
  for (const auto& rows : data::sorted_plan(examples, o.batch_tokens)) {
    if (o.check) o.check();
    const data::Batch b = data::make_batch(examples, rows);
    const Device d = model.device();
    const Tensor hidden =
        model.encode(b.tgt_in.to(d), b.tgt_lengths.to(d), 0).value();  // [B, T, D]
    for (int64_t r = 0; r < b.rows(); ++r) {
      const auto i = static_cast<size_t>(b.indices[static_cast<size_t>(r)]);
      const auto T = static_cast<int64_t>(examples[i].tgt.size());
      take(i, hidden.slice(0, r, r + 1).reshape({hidden.size(1), hidden.size(2)}).slice(0, 0, T));
    }
  }
  std::vector<std::vector<int32_t>> ids;
  ids.reserve(examples.size());
  for (data::Example& e : examples) ids.push_back(std::move(e.tgt));
  return ids;
}

}  // namespace

Tensor embed(const nn::EncoderOnly& model, const data::Tokenizer& tokenizer,
             const std::vector<std::string>& texts, const EmbedOptions& o,
             const std::string& input_name) {
  const int64_t D = model.config().d_model;
  std::vector<float> out(texts.size() * static_cast<size_t>(D));
  encode_all(model, tokenizer, texts, o, input_name, [&](size_t i, const Tensor& h) {
    const std::vector<float> rows = h.contiguous().to_vector<float>();
    const int64_t T = o.pooling == Pooling::kCls ? 1 : h.size(0);
    std::vector<double> sum(static_cast<size_t>(D), 0.0);
    for (int64_t t = 0; t < T; ++t)
      for (int64_t d = 0; d < D; ++d)
        sum[static_cast<size_t>(d)] += rows[static_cast<size_t>(t * D + d)];
    double norm = 0;
    for (double& v : sum) {
      v /= static_cast<double>(T);
      norm += v * v;
    }
    const double scale = o.normalize && norm > 0 ? 1.0 / std::sqrt(norm) : 1.0;
    for (int64_t d = 0; d < D; ++d)
      out[i * static_cast<size_t>(D) + static_cast<size_t>(d)] =
          static_cast<float>(sum[static_cast<size_t>(d)] * scale);
  });
  return Tensor::from_vector(out, {static_cast<int64_t>(texts.size()), D});
}

std::vector<Hidden> hidden_states(const nn::EncoderOnly& model, const data::Tokenizer& tokenizer,
                                  const std::vector<std::string>& texts, const EmbedOptions& o,
                                  const std::string& input_name) {
  std::vector<Hidden> out(texts.size());
  std::vector<std::vector<int32_t>> ids =
      encode_all(model, tokenizer, texts, o, input_name,
                 [&](size_t i, const Tensor& h) { out[i].states = h.contiguous(); });
  for (size_t i = 0; i < out.size(); ++i) out[i].ids = std::move(ids[i]);
  return out;
}

}  // namespace attend::decode
