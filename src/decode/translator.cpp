// Text-in, text-out translation (see translator.h).
#include "decode/translator.h"

#include "core/error.h"
#include "core/utf8.h"

namespace attend::decode {

void TranslateOptions::validate() const {
  search.validate();
  ATTEND_CHECK(batch_tokens >= 1, "translate: batch_tokens must be >= 1, got {}", batch_tokens);
  ATTEND_CHECK(max_input_tokens >= 0, "translate: max_input_tokens must be >= 0, got {}",
               max_input_tokens);
}

Translator::Translator(const nn::EncoderDecoder& model, const data::Tokenizer& tokenizer)
    : model_(model), tokenizer_(tokenizer) {
  ATTEND_CHECK(tokenizer.vocab_size() == model.config().tgt_vocab,
               "translator: the tokenizer has {} pieces but the model's vocabulary is {}",
               tokenizer.vocab_size(), model.config().tgt_vocab);
}

Translator::Translator(const models::LoadedModel& loaded)
    : Translator(*loaded.model, loaded.tokenizer) {}

std::vector<std::vector<Translation>> Translator::translate(
    const std::vector<std::string>& lines, const TranslateOptions& o, const std::string& input_name,
    const std::function<void(const std::string&)>& warn,
    const std::vector<std::string>& prefixes) const {
  o.validate();
  ATTEND_CHECK(prefixes.empty() || prefixes.size() == lines.size(),
               "translate: {} prefixes for the {} lines of {}", prefixes.size(), lines.size(),
               input_name);
  std::vector<std::vector<int32_t>> prefix_ids(prefixes.size());
  for (size_t i = 0; i < prefixes.size(); ++i) {
    ATTEND_CHECK(valid_utf8(prefixes[i]), "{}:{}: the prefix is not valid UTF-8", input_name,
                 i + 1);
    prefix_ids[i] = tokenizer_.encode(prefixes[i]);
  }
  const nn::TransformerConfig& c = model_.config();
  const int64_t max_input = o.max_input_tokens > 0 ? o.max_input_tokens : c.max_positions;
  std::vector<std::vector<int32_t>> sources(lines.size());
  for (size_t i = 0; i < lines.size(); ++i) {
    std::vector<int32_t> ids;
    if (valid_utf8(lines[i])) {
      ids = tokenizer_.encode(lines[i]);
    } else {
      ATTEND_CHECK(o.replace_bad_utf8,
                   "{}:{}: invalid UTF-8 (--bad-utf8 replace substitutes U+FFFD)", input_name,
                   i + 1);
      ids = tokenizer_.encode(repair_utf8(lines[i]));
    }
    const int64_t n = c.source_length(static_cast<int64_t>(ids.size()));
    if (n > max_input && warn)
      warn(input_name + ":" + std::to_string(i + 1) + " has " + std::to_string(n) +
           " subwords; translating the first " + std::to_string(max_input));
    sources[i] = c.source(std::move(ids), max_input);
  }
  for (size_t i = 0; i < prefix_ids.size(); ++i) {
    if (sources[i].empty()) continue;  // an empty line translates to an empty line
    const int64_t limit = max_output_length(model_, static_cast<int64_t>(sources[i].size()),
                                            o.search.max_extra);
    ATTEND_CHECK(static_cast<int64_t>(prefix_ids[i].size()) <= limit,
                 "{}:{}: the prefix has {} subwords, more than the {} an output of this line may "
                 "have (source length + max_extra)",
                 input_name, i + 1, prefix_ids[i].size(), limit);
  }
  const auto found = search_all(model_, sources, o.batch_tokens, o.search, prefix_ids);
  std::vector<std::vector<Translation>> out(found.size());
  for (size_t i = 0; i < found.size(); ++i)
    for (const Hypothesis& h : found[i])
      out[i].push_back({tokenizer_.decode(h.tokens), h.tokens, h.score, h.log_prob});
  return out;
}

std::vector<Tensor> cross_attention(const nn::EncoderDecoder& model,
                                    const std::vector<int32_t>& source,
                                    const std::vector<int32_t>& target) {
  const nn::TransformerConfig& c = model.config();
  const auto S = static_cast<int64_t>(source.size());
  auto T = static_cast<int64_t>(target.size()) + 1;
  // An output cut at the learned positions' end had no position to emit an end token from.
  if (c.positions == nn::Positions::kLearned && T > c.max_positions) --T;
  ATTEND_CHECK(S >= 1, "cross_attention: the source is empty");
  ATTEND_CHECK(T <= c.max_positions || c.positions != nn::Positions::kLearned,
               "cross_attention: {} target tokens, more than the model's {} positions",
               target.size(), c.max_positions);
  for (const int32_t id : source)
    ATTEND_CHECK(id >= 0 && id < c.src_vocab, "cross_attention: source id {} outside [0, {})", id,
                 c.src_vocab);
  for (const int32_t id : target)
    ATTEND_CHECK(id >= 0 && id < c.tgt_vocab, "cross_attention: target id {} outside [0, {})", id,
                 c.tgt_vocab);
  std::vector<int32_t> tgt_in = {c.bos_id};
  tgt_in.insert(tgt_in.end(), target.begin(), target.begin() + (T - 1));
  const Tensor src = Tensor::from_vector(source, {1, S});
  const Tensor src_lengths =
      Tensor::from_vector(std::vector<int32_t>{static_cast<int32_t>(S)}, {1});
  const ag::Variable memory = model.encode(src, src_lengths, 0);
  nn::CrossAttentionProbe probe;
  model.decode(Tensor::from_vector(tgt_in, {1, T}),
               Tensor::from_vector(std::vector<int32_t>{static_cast<int32_t>(T)}, {1}), memory,
               src_lengths, 0);
  std::vector<Tensor> out;
  for (const Tensor& w : probe.weights()) out.push_back(w.reshape({c.heads, T, S}).contiguous());
  return out;
}

}  // namespace attend::decode
