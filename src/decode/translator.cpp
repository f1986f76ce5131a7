// Text-in, text-out translation (see translator.h).
#include "decode/translator.h"

#include "core/error.h"
#include "core/utf8.h"
#include "data/batcher.h"
#include "ops/ops.h"

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
    prefix_ids[i] = tokenizer_.encode_target(prefixes[i]);
  }
  std::vector<std::vector<int32_t>> sources(lines.size());
  for (size_t i = 0; i < lines.size(); ++i)
    sources[i] = source_ids(lines[i], o, input_name, i + 1, warn);
  for (size_t i = 0; i < prefix_ids.size(); ++i) {
    if (sources[i].empty()) continue;  // an empty line translates to an empty line
    const int64_t limit = max_output_length(model_, static_cast<int64_t>(sources[i].size()),
                                            o.search.max_extra, o.search.max_length);
    ATTEND_CHECK(static_cast<int64_t>(prefix_ids[i].size()) <= limit,
                 "{}:{}: the prefix has {} subwords, more than the {} an output of this line may "
                 "have (source length + max_extra, at most max_length)",
                 input_name, i + 1, prefix_ids[i].size(), limit);
  }
  const auto found = search_all(model_, sources, o.batch_tokens, o.search, prefix_ids, o.check);
  std::vector<std::vector<Translation>> out(found.size());
  for (size_t i = 0; i < found.size(); ++i)
    for (const Hypothesis& h : found[i])
      out[i].push_back({tokenizer_.decode(h.tokens), h.tokens, h.score, h.log_prob});
  return out;
}

std::vector<std::vector<double>> Translator::score(const std::vector<std::string>& sources,
                                                   const std::vector<std::string>& targets,
                                                   const TranslateOptions& o,
                                                   const std::string& input_name) const {
  o.validate();
  ATTEND_CHECK(sources.size() == targets.size(), "score: {} sources but {} targets in {}",
               sources.size(), targets.size(), input_name);
  const nn::TransformerConfig& c = model_.config();
  std::vector<data::Example> pairs(sources.size());
  for (size_t i = 0; i < sources.size(); ++i) {
    pairs[i].src = source_ids(sources[i], o, input_name, i + 1);
    ATTEND_CHECK(!pairs[i].src.empty(), "{}:{}: the source is empty", input_name, i + 1);
    ATTEND_CHECK(valid_utf8(targets[i]), "{}:{}: the target is not valid UTF-8", input_name, i + 1);
    pairs[i].tgt = tokenizer_.encode_target(targets[i]);
    const auto T = static_cast<int64_t>(pairs[i].tgt.size()) + 1;
    ATTEND_CHECK(c.positions != nn::Positions::kLearned || T <= c.max_positions,
                 "{}:{}: the target has {} subwords, more than the model's {} positions hold",
                 input_name, i + 1, T - 1, c.max_positions);
  }
  std::vector<std::vector<double>> out(pairs.size());
  for (const auto& rows : data::sorted_plan(pairs, o.batch_tokens)) {
    if (o.check) o.check();
    const data::Batch b = data::make_batch(pairs, rows, {c.bos_id, c.eos_id});
    const Tensor logits = model_.forward(b.src, b.src_lengths, b.tgt_in, b.tgt_lengths, 0).value();
    // log p(next) = logit(next) - log sum exp(logits row): only the chosen logits are read.
    const std::vector<float> lse = ops::logsumexp(logits).to_vector<float>();  // [B * T]
    const std::vector<float> z = logits.contiguous().to_vector<float>();       // [B * T, V]
    const std::vector<int32_t> next = b.tgt_out.to_vector<int32_t>();          // [B * T]
    const std::vector<int32_t> lengths = b.tgt_lengths.to_vector<int32_t>();
    const int64_t T = b.tgt_in.size(1), V = logits.size(1);
    for (int64_t r = 0; r < b.rows(); ++r) {
      std::vector<double>& lp = out[static_cast<size_t>(b.indices[static_cast<size_t>(r)])];
      for (int64_t t = 0; t < lengths[static_cast<size_t>(r)]; ++t) {
        const auto i = static_cast<size_t>(r * T + t);
        lp.push_back(
            static_cast<double>(z[i * static_cast<size_t>(V) + static_cast<size_t>(next[i])]) -
            static_cast<double>(lse[i]));
      }
    }
  }
  return out;
}

std::vector<int32_t> Translator::source_ids(
    const std::string& line, const TranslateOptions& o, const std::string& input_name,
    size_t number, const std::function<void(const std::string&)>& warn) const {
  const nn::TransformerConfig& c = model_.config();
  const int64_t max_input = o.max_input_tokens > 0 ? o.max_input_tokens : c.max_positions;
  std::vector<int32_t> ids;
  if (valid_utf8(line)) {
    ids = tokenizer_.encode(line);
  } else {
    ATTEND_CHECK(o.replace_bad_utf8, "{}:{}: invalid UTF-8 (--bad-utf8 replace substitutes U+FFFD)",
                 input_name, number);
    ids = tokenizer_.encode(repair_utf8(line));
  }
  const int64_t n = c.source_length(static_cast<int64_t>(ids.size()));
  if (n > max_input && warn)
    warn(input_name + ":" + std::to_string(number) + " has " + std::to_string(n) +
         " subwords; translating the first " + std::to_string(max_input));
  return c.source(std::move(ids), max_input);
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
