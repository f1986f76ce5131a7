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
}

namespace {

// The length of the longest prefix of `text` that does not end inside a UTF-8 character.
size_t complete_prefix(const std::string& text) {
  size_t start = text.size();
  while (start > 0 && (static_cast<unsigned char>(text[start - 1]) & 0xC0) == 0x80) --start;
  if (start == 0) return 0;
  const auto lead = static_cast<unsigned char>(text[start - 1]);
  const size_t need = lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
  return text.size() - (start - 1) >= need ? text.size() : start - 1;
}

}  // namespace

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
    score.nll +=
        ops::cross_entropy(logits, b.tgt_out, {0.0, model.config().pad_id}, ops::Reduction::kSum)
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
    score.nll +=
        ops::cross_entropy(logits, b.tgt_out, {0.0, c.pad_id}, ops::Reduction::kSum).loss.item();
    score.masked += b.tgt_tokens;
    score.correct += count_correct(logits, b.tgt_out, c.pad_id);
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
  if (prompt.empty() || !tokenizer_->is_char()) ids.push_back(model_.config().bos_id);
  for (int32_t id : tokenizer_->encode(prompt)) ids.push_back(id);
  return ids;
}

namespace {

// Reads prompts seq[which[k]] into cache slots slots[k] in one causal pass (prefill) and calls
// use(which[k], logits, r) with row r of the logits of each prompt's last position.
void prefill_prompts(const nn::DecoderOnly& model, const std::vector<std::vector<int32_t>>& seq,
                     const std::vector<size_t>& which, const std::vector<size_t>& slots,
                     nn::KvCache& cache,
                     const std::function<void(size_t, const Tensor&, int64_t)>& use) {
  // Batches of similar length holding about kPrefillTokens padded positions (a longer prompt
  // gets a batch of its own); only each prompt's last position is projected onto the
  // vocabulary. Runs on the heap: a batch's activations are freed as it goes.
  constexpr int64_t kPrefillTokens = 8192;
  const nn::TransformerConfig& c = model.config();
  std::vector<size_t> order(which.size());  // positions in `which`, shortest prompt first
  for (size_t k = 0; k < order.size(); ++k) order[k] = k;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return seq[which[a]].size() < seq[which[b]].size(); });
  HeapScope heap;
  for (size_t a = 0; a < order.size();) {
    size_t b = a + 1;
    int64_t T = static_cast<int64_t>(seq[which[order[a]]].size());
    while (b < order.size()) {
      const int64_t t = static_cast<int64_t>(seq[which[order[b]]].size());  // the longest
      if (t * static_cast<int64_t>(b - a + 1) > kPrefillTokens) break;
      T = t;
      ++b;
    }
    const int64_t n = static_cast<int64_t>(b - a);
    std::vector<int32_t> ids(static_cast<size_t>(n * T), c.pad_id), lengths, slot, last;
    for (int64_t r = 0; r < n; ++r) {
      const size_t k = order[a + static_cast<size_t>(r)];
      const std::vector<int32_t>& p = seq[which[k]];
      std::copy(p.begin(), p.end(), ids.begin() + r * T);
      lengths.push_back(static_cast<int32_t>(p.size()));
      slot.push_back(static_cast<int32_t>(slots[k]));
      last.push_back(static_cast<int32_t>(r * T + static_cast<int64_t>(p.size()) - 1));
    }
    const Tensor hidden =
        model.prefill(Tensor::from_vector(ids, {n, T}), Tensor::from_vector(lengths, {n}),
                      Tensor::from_vector(slot, {n}), cache);  // [n, T, D]
    const Tensor rows_last = ops::embedding(Tensor::from_vector(last, {n}),
                                            hidden.reshape({n * T, c.d_model}));  // [n, D]
    const Tensor logits = model.project(ag::Variable(rows_last)).value().contiguous();
    for (int64_t r = 0; r < n; ++r) use(which[order[a + static_cast<size_t>(r)]], logits, r);
    a = b;
  }
}

}  // namespace

std::vector<Generation> Generator::generate(
    const std::vector<std::vector<int32_t>>& prompts, const GenerateOptions& o,
    const std::function<void(size_t, const std::string&)>& on_token) const {
  o.validate();
  ATTEND_CHECK(!on_token || tokenizer_, "generate: streaming text needs the model's tokenizer");
  const nn::TransformerConfig& c = model_.config();
  const int64_t ctx = context();
  const size_t B = prompts.size();
  std::vector<Generation> out(B);
  std::vector<std::vector<int32_t>> seq(B);  // prompt (after any cut), then generated ids
  std::vector<bool> live(B, true);
  for (size_t i = 0; i < B; ++i) {
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
      out[i].cut = static_cast<int64_t>(p.size()) - ctx;
      p.erase(p.begin(), p.begin() + out[i].cut);
    }
    out[i].prompt_tokens = static_cast<int64_t>(p.size());
    seq[i] = std::move(p);
    if (o.max_new == 0) live[i] = false;
  }
  if (o.beam > 1) {
    out = beam_search(std::move(out), std::move(seq), o);
    if (on_token)
      for (size_t i = 0; i < B; ++i)
        if (!out[i].text.empty()) on_token(i, out[i].text);
    return out;
  }
  // Drawing (or greedy): every prompt joins one session at once, prompt i drawing from stream i.
  LmSession session(model_, tokenizer_);
  std::vector<LmRequest> requests;
  for (size_t i = 0; i < B; ++i)
    if (live[i]) requests.push_back({seq[i], o, i, static_cast<int64_t>(i), on_token != nullptr});
  session.admit(requests);
  auto flush = [&] {
    for (auto& [i, piece] : session.take_text())
      if (on_token) on_token(static_cast<size_t>(i), piece);
  };
  flush();
  while (!session.idle()) {
    session.step();
    flush();
  }
  for (LmResult& r : session.retire()) {
    Generation& g = out[static_cast<size_t>(r.id)];
    g.tokens = std::move(r.generation.tokens);
    g.text = std::move(r.generation.text);
    g.ended = r.generation.ended;
  }
  return out;
}

// ---------------------------------------------------------------- LmSession

LmSession::LmSession(const nn::DecoderOnly& model, const data::Tokenizer* tokenizer)
    : model_(model), tokenizer_(tokenizer), cache_(model.make_cache()) {}

void LmSession::admit(const std::vector<LmRequest>& requests) {
  const nn::TransformerConfig& c = model_.config();
  const int64_t ctx = c.max_positions;
  for (const LmRequest& r : requests) {  // all checked before any is admitted
    r.options.validate();
    ATTEND_CHECK(r.options.beam == 1,
                 "generate: request {}: a session draws tokens (beam 1), got beam {}", r.id,
                 r.options.beam);
    ATTEND_CHECK(!r.prompt.empty() && static_cast<int64_t>(r.prompt.size()) <= ctx,
                 "generate: request {}: {} prompt ids, expected 1..{} (the model's context)", r.id,
                 r.prompt.size(), ctx);
    for (const int32_t id : r.prompt)
      ATTEND_CHECK(id >= 0 && id < c.tgt_vocab,
                   "generate: request {}: id {} outside the vocabulary of {}", r.id, id,
                   c.tgt_vocab);
  }
  std::vector<std::vector<int32_t>> prompts;  // of the new entries, by position in `fresh`
  std::vector<size_t> fresh, slots;
  for (const LmRequest& r : requests) {
    Entry e;
    e.id = r.id;
    e.options = r.options;
    e.stream = r.stream;
    e.pieces = r.pieces && tokenizer_;
    e.seq = r.prompt;
    e.out.prompt_tokens = static_cast<int64_t>(r.prompt.size());
    if (r.options.max_new == 0) {  // nothing to draw: done at once
      retired_.push_back({e.id, e.out});
      continue;
    }
    if (free_slots_.empty()) free_slots_.push_back(slots_used_++);
    e.slot = free_slots_.back();
    free_slots_.pop_back();
    e.live = true;
    ++live_count_;
    fresh.push_back(entries_.size());
    slots.push_back(static_cast<size_t>(e.slot));
    prompts.push_back(e.seq);
    entries_.push_back(std::move(e));
  }
  // Room for every live prompt's whole generation: prompt + max_new positions, at most ctx.
  int64_t longest = 1;
  for (const Entry& e : entries_)
    if (e.live) longest = std::max(longest, std::min(ctx, e.out.prompt_tokens + e.options.max_new));
  cache_.reserve(slots_used_, longest, 0, 0);
  std::vector<size_t> which(fresh.size());
  for (size_t k = 0; k < which.size(); ++k) which[k] = k;
  prefill_prompts(model_, prompts, which, slots, cache_,
                  [&](size_t k, const Tensor& logits, int64_t r) { take(fresh[k], logits, r); });
}

void LmSession::take(size_t e, const Tensor& logits, int64_t r) {
  const nn::TransformerConfig& c = model_.config();
  Entry& x = entries_[e];
  const GenerateOptions& o = x.options;
  const uint64_t step = x.out.tokens.size();  // tokens drawn so far
  const int64_t V = c.tgt_vocab;
  int32_t v;
  if (o.temperature == 0) {  // greedy: the most likely token (lowest id on ties), read in place
    const float* row = logits.data<float>() + r * V;
    v = -1;
    float best = 0;
    for (int32_t k = 0; k < static_cast<int32_t>(V); ++k) {
      if (k == c.pad_id || k == c.unk_id || k == c.bos_id) continue;
      if (v < 0 || row[k] > best) v = k, best = row[k];
    }
  } else {
    SearchOptions draw;  // the sampling part of the search options
    draw.temperature = o.temperature;
    draw.top_k = o.top_k;
    draw.top_p = o.top_p;
    v = sample_token(logits.slice(0, r, r + 1).to_vector<float>(), c, true, draw,
                     philox_uniform(o.seed, x.stream, step));
  }
  if (v == c.eos_id && o.stop_at_eos) {
    x.out.ended = true;
    finish(e);
    return;
  }
  x.seq.push_back(v);
  x.out.tokens.push_back(v);
  if (x.pieces) {  // the text this token completes (whole UTF-8 characters only)
    const std::string text = tokenizer_->decode(x.out.tokens);
    const size_t end = complete_prefix(text);
    if (end > x.sent) {
      text_.emplace_back(x.id, text.substr(x.sent, end - x.sent));
      x.sent = end;
    }
  }
  // The next step would feed this token at position seq.size() - 1: past the context, stop.
  if (static_cast<int64_t>(x.out.tokens.size()) >= o.max_new ||
      static_cast<int64_t>(x.seq.size()) > c.max_positions)
    finish(e);
}

void LmSession::finish(size_t e) {
  Entry& x = entries_[e];
  x.live = false;
  --live_count_;
  free_slots_.push_back(x.slot);
  if (tokenizer_) {
    x.out.text = tokenizer_->decode(x.out.tokens);
    if (x.pieces && x.out.text.size() > x.sent) text_.emplace_back(x.id, x.out.text.substr(x.sent));
  }
  retired_.push_back({x.id, std::move(x.out)});
}

void LmSession::step() {
  if (live_count_ == 0) return;
  arena_.reset();
  ArenaScope scope(&arena_);
  std::vector<int32_t> tok, pos, slot;
  std::vector<size_t> who;
  for (size_t e = 0; e < entries_.size(); ++e) {
    if (!entries_[e].live) continue;
    tok.push_back(entries_[e].seq.back());
    pos.push_back(static_cast<int32_t>(entries_[e].seq.size() - 1));
    slot.push_back(entries_[e].slot);
    who.push_back(e);
  }
  const auto n = static_cast<int64_t>(who.size());
  nn::DecodeRows rows;
  rows.tokens = Tensor::from_vector(tok, {n});
  rows.positions = Tensor::from_vector(pos, {n});
  rows.self_slots = Tensor::from_vector(slot, {n});
  const Tensor hidden = model_.decode_rows(rows, cache_);                           // [n, D]
  const Tensor logits = model_.project(ag::Variable(hidden)).value().contiguous();  // [n, V]
  for (int64_t r = 0; r < n; ++r) take(who[static_cast<size_t>(r)], logits, r);
}

std::vector<LmResult> LmSession::retire() {
  // Entries that no longer draw leave the list (live ones keep their admission order).
  std::erase_if(entries_, [](const Entry& e) { return !e.live; });
  return std::exchange(retired_, {});
}

std::vector<std::pair<int64_t, std::string>> LmSession::take_text() {
  return std::exchange(text_, {});
}

bool LmSession::cancel(int64_t id) {
  for (Entry& e : entries_)
    if (e.live && e.id == id) {
      e.live = false;
      --live_count_;
      free_slots_.push_back(e.slot);
      return true;
    }
  return false;
}

std::vector<Generation> Generator::beam_search(std::vector<Generation> out,
                                               std::vector<std::vector<int32_t>> seq,
                                               const GenerateOptions& o) const {
  const nn::TransformerConfig& c = model_.config();
  const int64_t ctx = context(), K = o.beam;
  const size_t B = seq.size();
  struct Hyp {
    std::vector<int32_t> tokens;  // generated, the newest not yet in the cache
    double log_prob;
    int32_t slot;
  };
  struct Finished {
    std::vector<int32_t> tokens;
    double log_prob, score;
    bool ended;
  };
  std::vector<std::vector<Hyp>> live(B);
  std::vector<std::vector<Finished>> finished(B);
  std::vector<int64_t> limit(B);  // tokens a prompt may generate: max_new, and the context
  int64_t positions = 1;
  for (size_t i = 0; i < B; ++i) {
    const int64_t P = static_cast<int64_t>(seq[i].size());
    limit[i] = std::min<int64_t>(o.max_new, ctx + 1 - P);
    positions = std::max<int64_t>(positions, P + limit[i] - 1);
  }
  nn::KvCache cache = model_.make_cache();
  cache.reserve(static_cast<int64_t>(B) * K, positions, 0, 0);
  std::vector<int32_t> free_slots;
  for (int64_t s = static_cast<int64_t>(B) * K - 1; s >= 0; --s)
    free_slots.push_back(static_cast<int32_t>(s));
  const std::vector<int32_t> never = {c.pad_id, c.unk_id, c.bos_id};

  // Extends prompt i's live hypotheses, rows r0.. of logits [n, V], by the 2K best tokens
  // each; keeps the K best, finishes hypotheses that end or reach the limit, decides whether
  // prompt i is done; assigns cache slots (child_slots, as translation's beam search does).
  SlotCopies copies;
  auto extend = [&](size_t i, const Tensor& logits, int64_t r0) {
    const std::vector<Hyp>& hyps = live[i];
    const int64_t n = static_cast<int64_t>(hyps.size());
    const Tensor rows = logits.slice(0, r0, r0 + n);
    const std::vector<float> lse = ops::logsumexp(rows).to_vector<float>();
    const ops::TopK top = ops::top_k(rows, 2 * K, never);
    const std::vector<float> values = top.values.to_vector<float>();
    const std::vector<int32_t> ids = top.indices.to_vector<int32_t>(),
                               counts = top.counts.to_vector<int32_t>();
    struct Cand {
      double log_prob;
      int64_t parent;
      int32_t token;
    };
    std::vector<Cand> cands;
    for (int64_t h = 0; h < n; ++h)
      for (int64_t j = 0; j < counts[static_cast<size_t>(h)]; ++j)
        cands.push_back(
            {hyps[static_cast<size_t>(h)].log_prob +
                 (values[static_cast<size_t>(h * 2 * K + j)] - lse[static_cast<size_t>(h)]),
             h, ids[static_cast<size_t>(h * 2 * K + j)]});
    std::stable_sort(cands.begin(), cands.end(),
                     [](const Cand& a, const Cand& b) { return a.log_prob > b.log_prob; });
    const int64_t len = static_cast<int64_t>(hyps[0].tokens.size()) + 1;  // after this token
    std::vector<Hyp> next;
    std::vector<int64_t> parent;
    for (size_t ci = 0; ci < cands.size() && static_cast<int64_t>(next.size()) < K; ++ci) {
      const Cand& x = cands[ci];
      const Hyp& from = hyps[static_cast<size_t>(x.parent)];
      const bool ends = x.token == c.eos_id && o.stop_at_eos;
      if (ends || len >= limit[i]) {  // only extensions ranked within the beam may finish
        if (static_cast<int64_t>(ci) < K) {
          Finished f{from.tokens, x.log_prob, x.log_prob / length_penalty(len, o.alpha), ends};
          if (!ends) f.tokens.push_back(x.token);
          finished[i].push_back(std::move(f));
        }
        continue;
      }
      Hyp g{from.tokens, x.log_prob, -1};
      g.tokens.push_back(x.token);
      next.push_back(std::move(g));
      parent.push_back(x.parent);
    }
    bool done = next.empty();
    auto& f = finished[i];
    if (!done && static_cast<int64_t>(f.size()) >= K) {
      std::nth_element(f.begin(), f.begin() + (K - 1), f.end(),
                       [](const Finished& a, const Finished& b) { return a.score > b.score; });
      done = f[static_cast<size_t>(K - 1)].score >=
             next.front().log_prob / length_penalty(len, o.alpha);
    }
    if (done) next.clear(), parent.clear();
    std::vector<int32_t> slots, written;  // a hypothesis's cache holds the prompt and its tokens
    for (const Hyp& h : hyps) {
      slots.push_back(h.slot);
      written.push_back(static_cast<int32_t>(seq[i].size() + h.tokens.size()));
    }
    const std::vector<int32_t> child = child_slots(slots, written, parent, free_slots, copies);
    for (size_t j = 0; j < next.size(); ++j) next[j].slot = child[j];
    live[i] = std::move(next);
  };
  auto flush_copies = [&] {
    if (copies.from.empty()) return;
    const int64_t m = static_cast<int64_t>(copies.from.size());
    cache.copy_slots(Tensor::from_vector(copies.from, {m}), Tensor::from_vector(copies.to, {m}),
                     Tensor::from_vector(copies.lengths, {m}));
    copies = {};
  };

  std::vector<size_t> reading, slots;
  for (size_t i = 0; i < B; ++i) {
    if (limit[i] <= 0) continue;
    live[i].push_back({{}, 0.0, free_slots.back()});
    free_slots.pop_back();
    reading.push_back(i);
    slots.push_back(static_cast<size_t>(live[i][0].slot));
  }
  prefill_prompts(model_, seq, reading, slots, cache,
                  [&](size_t i, const Tensor& logits, int64_t r) { extend(i, logits, r); });
  flush_copies();
  Arena arena;
  for (;;) {
    arena.reset();
    ArenaScope scope(&arena);
    std::vector<int32_t> tok, pos, slot;
    std::vector<std::pair<size_t, int64_t>> groups;  // (prompt, first row)
    for (size_t i = 0; i < B; ++i) {
      if (live[i].empty()) continue;
      groups.push_back({i, static_cast<int64_t>(tok.size())});
      for (const Hyp& h : live[i]) {
        tok.push_back(h.tokens.back());
        pos.push_back(static_cast<int32_t>(seq[i].size() + h.tokens.size() - 1));
        slot.push_back(h.slot);
      }
    }
    if (groups.empty()) break;
    const int64_t n = static_cast<int64_t>(tok.size());
    nn::DecodeRows rows;
    rows.tokens = Tensor::from_vector(tok, {n});
    rows.positions = Tensor::from_vector(pos, {n});
    rows.self_slots = Tensor::from_vector(slot, {n});
    const Tensor hidden = model_.decode_rows(rows, cache);
    const Tensor logits = model_.project(ag::Variable(hidden)).value().contiguous();
    for (const auto& [i, r0] : groups) extend(i, logits, r0);
    flush_copies();
  }
  for (size_t i = 0; i < B; ++i) {
    auto& f = finished[i];
    if (f.empty()) continue;  // max_new 0
    const auto best =
        std::max_element(f.begin(), f.end(), [](const Finished& a, const Finished& b) {
          return a.score < b.score;  // the first of equal scores
        });
    out[i].tokens = best->tokens;
    out[i].log_prob = best->log_prob;
    out[i].ended = best->ended;
    if (tokenizer_) out[i].text = tokenizer_->decode(out[i].tokens);
  }
  return out;
}

}  // namespace attend::decode
