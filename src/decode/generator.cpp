// Text generation (see generator.h).
#include "decode/generator.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "core/allocator.h"
#include "core/error.h"
#include "core/rng.h"
#include "core/utf8.h"
#include "data/batcher.h"
#include "ops/ops.h"

namespace attend::decode {

void GenerateOptions::validate() const {
  ATTEND_CHECK(max_new >= 0, "generate: --max-new must be >= 0, got {}", max_new);
  ATTEND_CHECK(std::isfinite(temperature) && temperature >= 0,
               "generate: --temperature must be >= 0 (0: greedy), got {}", temperature);
  ATTEND_CHECK(top_k >= 0, "generate: --top-k must be >= 0, got {}", top_k);
  ATTEND_CHECK(top_p > 0 && top_p <= 1, "generate: --top-p must be in (0, 1], got {}", top_p);
  ATTEND_CHECK(beam >= 1, "generate: --beam must be >= 1, got {}", beam);
  ATTEND_CHECK(std::isfinite(alpha) && alpha >= 0, "generate: --alpha must be >= 0, got {}", alpha);
  ATTEND_CHECK(n >= 1, "generate: n must be >= 1, got {}", n);
  ATTEND_CHECK(beam == 1 || n <= beam,
               "generate: n must be at most the beam ({}) to return the n best, got {}", beam, n);
  ATTEND_CHECK(beam > 1 || temperature > 0 || n == 1,
               "generate: n > 1 needs beam search (beam >= n) or drawing (temperature > 0); "
               "greedy search gives one generation");
}

SearchOptions GenerateOptions::search() const {
  SearchOptions s;
  s.beam = beam;
  s.n_best = beam > 1 ? n : 1;
  s.alpha = alpha;
  s.max_new = max_new;
  s.stop_at_eos = stop_at_eos;
  s.sample = beam == 1 && temperature > 0;
  if (s.sample) {
    s.temperature = temperature;
    s.top_k = top_k;
    s.top_p = top_p;
  }
  s.seed = seed;
  return s;
}

Generation to_generation(const Result& r, int64_t prompt_tokens, const data::Tokenizer* tokenizer,
                         size_t rank) {
  Generation g;
  g.prompt_tokens = prompt_tokens;
  if (rank >= r.hypotheses.size()) return g;
  const Hypothesis& h = r.hypotheses[rank];
  g.tokens = h.tokens;
  g.ended = h.ended;
  g.log_prob = h.log_prob;
  if (tokenizer) g.text = tokenizer->decode(g.tokens);
  return g;
}

LmScore score_text(const nn::DecoderOnly& model, const data::Tokenizer& tokenizer,
                   const std::string& text, int64_t block, int64_t max_tokens) {
  ATTEND_CHECK(block >= 1 && block <= model.config().max_positions,
               "eval-lm: --block must be in 1..{} (the model's context), got {}",
               model.config().max_positions, block);
  const std::vector<data::Example> windows =
      data::lm_windows(data::lm_stream(tokenizer, text), block, block);
  LmScore score;
  score.windows = static_cast<int64_t>(windows.size());
  for (const auto& rows : data::sorted_plan(windows, max_tokens)) {
    const data::Batch b = data::make_batch(windows, rows);
    const Tensor logits = model.forward(b.tgt_in, b.tgt_lengths, 0).value();
    score.nll += ops::cross_entropy(logits, b.tgt_out, {0.0, data::kIgnore}, ops::Reduction::kSum)
                     .loss.item();
    score.tokens += b.tgt_tokens;
  }
  return score;
}

int64_t count_correct(const Tensor& logits, const Tensor& targets, int32_t ignore_id) {
  const std::vector<int32_t> t = targets.to_vector<int32_t>();
  int64_t correct = 0;
  for (size_t i = 0; i < t.size(); ++i) {
    if (t[i] == ignore_id) continue;
    const auto row =
        logits.slice(0, static_cast<int64_t>(i), static_cast<int64_t>(i) + 1).to_vector<float>();
    correct += std::max_element(row.begin(), row.end()) - row.begin() == t[i];
  }
  return correct;
}

MaskedScore score_masked(const nn::EncoderOnly& model, const data::Tokenizer& tokenizer,
                         const std::string& text, uint64_t seed, int64_t max_tokens) {
  const nn::TransformerConfig& c = model.config();
  const data::MaskRule rule = data::mask_rule(tokenizer, c.src_vocab);
  ATTEND_CHECK(rule.mask_id >= 0, "eval-lm: the model's vocabulary has no {} piece",
               data::kMaskPiece);
  const std::vector<data::Example> sentences =
      data::mlm_sentences(tokenizer, text, c.max_positions);
  MaskedScore score;
  score.sentences = static_cast<int64_t>(sentences.size());
  uint64_t k = 0;
  for (const auto& rows : data::sorted_plan(sentences, max_tokens)) {
    const data::Batch b = data::mask_batch(data::make_batch(sentences, rows), rule, seed, k++);
    const Tensor logits = model.forward(b.tgt_in, b.tgt_lengths, 0).value();
    score.nll += ops::cross_entropy(logits, b.tgt_out, {0.0, data::kIgnore}, ops::Reduction::kSum)
                     .loss.item();
    score.masked += b.tgt_tokens;
    score.correct += count_correct(logits, b.tgt_out, data::kIgnore);
  }
  return score;
}

std::vector<Filler> fill_mask(const nn::EncoderOnly& model, const data::Tokenizer& tokenizer,
                              const std::string& text, int64_t top_k) {
  ATTEND_CHECK(valid_utf8(text), "fill-mask: invalid UTF-8 in the text");
  ATTEND_CHECK(top_k >= 1, "fill-mask: --top-k must be >= 1, got {}", top_k);
  const std::string mask = data::kMaskPiece;
  const size_t at = text.find(mask);
  int64_t count = 0;
  for (size_t p = text.find(mask); p != std::string::npos; p = text.find(mask, p + mask.size()))
    ++count;
  ATTEND_CHECK(count == 1, "fill-mask: the text must hold exactly one {}, it holds {}", mask,
               count);
  const nn::TransformerConfig& c = model.config();
  const int32_t mask_id = tokenizer.mask_id();
  ATTEND_CHECK(mask_id >= 0, "fill-mask: the model's vocabulary has no {} piece", mask);
  const std::string left = text.substr(0, at), right = text.substr(at + mask.size());
  std::vector<int32_t> ids = {c.bos_id};
  for (int32_t id : tokenizer.encode(left)) ids.push_back(id);
  const int64_t blank = static_cast<int64_t>(ids.size());
  ids.push_back(mask_id);
  for (int32_t id : tokenizer.encode(right)) ids.push_back(id);
  ids.push_back(c.eos_id);
  const int64_t T = static_cast<int64_t>(ids.size());
  ATTEND_CHECK(T <= c.max_positions, "fill-mask: the text has {} tokens but the model takes {}", T,
               c.max_positions);
  const Tensor logits =
      model
          .forward(Tensor::from_vector(ids, {1, T}),
                   Tensor::from_vector(std::vector<int32_t>{static_cast<int32_t>(T)}, {1}), 0)
          .value();
  const std::vector<float> row = logits.slice(0, blank, blank + 1).to_vector<float>();
  const double mx = *std::max_element(row.begin(), row.end());
  double z = 0;
  for (float x : row) z += std::exp(x - mx);
  std::vector<int32_t> order;
  for (int32_t v = 4; v < static_cast<int32_t>(row.size()); ++v)
    if (v != mask_id) order.push_back(v);
  const size_t k = std::min<size_t>(static_cast<size_t>(top_k), order.size());
  std::partial_sort(
      order.begin(), order.begin() + static_cast<int64_t>(k), order.end(),
      [&](int32_t a, int32_t b) { return row[a] > row[b] || (row[a] == row[b] && a < b); });
  std::vector<Filler> out;
  for (size_t i = 0; i < k; ++i) {
    Filler f;
    f.id = order[i];
    f.piece = tokenizer.decode({f.id});
    f.probability = std::exp(row[f.id] - mx) / z;
    f.text = left + f.piece + right;
    out.push_back(std::move(f));
  }
  return out;
}

Generator::Generator(const nn::DecoderOnly& model, const data::Tokenizer& tokenizer)
    : model_(model), tokenizer_(&tokenizer) {}

Generator::Generator(const nn::DecoderOnly& model) : model_(model), tokenizer_(nullptr) {}

int64_t Generator::context() const { return model_.config().max_positions; }

std::vector<int32_t> Generator::prompt_ids(const std::string& prompt,
                                           const std::string& where) const {
  ATTEND_CHECK(tokenizer_, "{}: a generator built without a tokenizer reads ids, not text", where);
  ATTEND_CHECK(valid_utf8(prompt), "{}: invalid UTF-8 in the prompt", where);
  std::vector<int32_t> ids;
  if (prompt.empty() || !tokenizer_->is_stream()) ids.push_back(model_.config().bos_id);
  for (int32_t id : tokenizer_->encode(prompt)) ids.push_back(id);
  return ids;
}

GenerationRun::GenerationRun(const Generator& generator,
                             const std::vector<std::vector<int32_t>>& prompts,
                             const GenerateOptions& o, bool pieces)
    : generator_(generator),
      o_(o),
      out_(prompts.size()),
      session_(generator.model(), generator.tokenizer()) {
  o.validate();
  ATTEND_CHECK(o.n == 1,
               "generate: one generation per prompt here, got n = {} (the server's "
               "/v1/completions returns n)",
               o.n);
  ATTEND_CHECK(!pieces || generator.tokenizer(),
               "generate: streaming text needs the model's tokenizer");
  const nn::TransformerConfig& c = generator.model().config();
  const int64_t ctx = generator.context();
  std::vector<Request> requests;
  const SearchOptions search = o.search();
  for (size_t i = 0; i < prompts.size(); ++i) {
    std::vector<int32_t> p = prompts[i];
    ATTEND_CHECK(!p.empty(),
                 "generate: prompt {} has no ids (an empty prompt is the "
                 "beginning-of-text token)",
                 i + 1);
    for (int32_t id : p)
      ATTEND_CHECK(id >= 0 && id < c.tgt_vocab,
                   "generate: prompt {} has id {} outside the "
                   "vocabulary of {}",
                   i + 1, id, c.tgt_vocab);
    if (static_cast<int64_t>(p.size()) > ctx) {
      ATTEND_CHECK(o.truncate_left,
                   "generate: prompt {} has {} tokens but the model's context "
                   "is {} (cut it, or keep its last tokens with --truncate left)",
                   i + 1, p.size(), ctx);
      out_[i].cut = static_cast<int64_t>(p.size()) - ctx;
      p.erase(p.begin(), p.begin() + out_[i].cut);
    }
    out_[i].prompt_tokens = static_cast<int64_t>(p.size());
    requests.push_back({std::move(p), search, i, static_cast<int64_t>(i), {}, pieces});
  }
  // Every prompt joins one session at once, prompt i drawing from stream i.
  if (o.check) o.check();
  session_.admit(requests);
}

void GenerationRun::step() {
  if (o_.check) o_.check();
  session_.step();
}

std::vector<Generation> GenerationRun::finish() {
  ATTEND_CHECK(done(), "generate: finish() before the generation is done");
  for (const Result& r : session_.retire()) {
    Generation& g = out_[static_cast<size_t>(r.id)];
    const Generation got = to_generation(r, g.prompt_tokens, generator_.tokenizer());
    g.tokens = got.tokens;
    g.text = got.text;
    g.ended = got.ended;
    if (o_.beam > 1) g.log_prob = got.log_prob;
  }
  return out_;
}

std::vector<Generation> Generator::generate(
    const std::vector<std::vector<int32_t>>& prompts, const GenerateOptions& o,
    const std::function<void(size_t, const std::string&)>& on_token) const {
  GenerationRun run(*this, prompts, o, on_token != nullptr);
  auto flush = [&] {
    for (auto& [i, piece] : run.take_text())
      if (on_token) on_token(static_cast<size_t>(i), piece);
  };
  flush();
  while (!run.done()) {
    run.step();
    flush();
  }
  return run.finish();
}

}  // namespace attend::decode
