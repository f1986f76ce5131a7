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
    const std::function<void(const std::string&)>& warn) const {
  o.validate();
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
  const auto found = search_all(model_, sources, o.batch_tokens, o.search);
  std::vector<std::vector<Translation>> out(found.size());
  for (size_t i = 0; i < found.size(); ++i)
    for (const Hypothesis& h : found[i])
      out[i].push_back({tokenizer_.decode(h.tokens), h.tokens, h.score, h.log_prob});
  return out;
}

}  // namespace attend::decode
