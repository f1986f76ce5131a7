// Step-level decoding sessions, and search over them (see session.h).
#include "decode/session.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <unordered_map>

#include "core/error.h"
#include "core/rng.h"
#include "ops/ops.h"

namespace attend::decode {

void SearchOptions::validate() const {
  ATTEND_CHECK(beam >= 1, "search: beam must be >= 1, got {}", beam);
  ATTEND_CHECK(n_best >= 1 && n_best <= beam, "search: n_best must be in [1, beam = {}], got {}",
               beam, n_best);
  ATTEND_CHECK(std::isfinite(alpha) && alpha >= 0, "search: alpha must be >= 0, got {}", alpha);
  ATTEND_CHECK(max_extra >= 0, "search: max_extra must be >= 0, got {}", max_extra);
  ATTEND_CHECK(max_length >= 0, "search: max_length must be >= 0, got {}", max_length);
  ATTEND_CHECK(max_new >= 0, "search: max_new must be >= 0, got {}", max_new);
  ATTEND_CHECK(min_length >= 0, "search: min_length must be >= 0, got {}", min_length);
  if (sample) {
    ATTEND_CHECK(beam == 1, "search: sampling draws one hypothesis (beam 1), got beam {}", beam);
    ATTEND_CHECK(std::isfinite(temperature) && temperature > 0,
                 "search: temperature must be > 0, got {}", temperature);
    ATTEND_CHECK(top_k >= 0, "search: top_k must be >= 0, got {}", top_k);
    ATTEND_CHECK(top_p > 0 && top_p <= 1, "search: top_p must be in (0, 1], got {}", top_p);
  }
}

double length_penalty(int64_t length, double alpha) {
  return alpha == 0 ? 1.0 : std::pow((5.0 + static_cast<double>(length)) / 6.0, alpha);
}

int64_t max_output_length(const nn::EncoderDecoder& model, int64_t src_len, int64_t max_extra,
                          int64_t max_length) {
  int64_t limit = src_len + max_extra;
  if (max_length > 0) limit = std::min(limit, max_length);
  if (model.config().positions == nn::Positions::kLearned)
    limit = std::min<int64_t>(limit, model.config().max_positions);
  return std::max<int64_t>(limit, 1);
}

std::vector<int32_t> child_slots(const std::vector<int32_t>& slots,
                                 const std::vector<int32_t>& written,
                                 const std::vector<int64_t>& parent,
                                 std::vector<int32_t>& free_slots, SlotCopies& copies) {
  const size_t n = slots.size();
  std::vector<int32_t> children(n, 0);
  for (const int64_t p : parent) ++children[static_cast<size_t>(p)];
  for (size_t r = 0; r < n; ++r)
    if (children[r] == 0) free_slots.push_back(slots[r]);
  std::vector<int32_t> out(parent.size());
  std::vector<bool> inherited(n, false);
  for (size_t j = 0; j < parent.size(); ++j) {
    const size_t p = static_cast<size_t>(parent[j]);
    if (!inherited[p]) {
      inherited[p] = true;
      out[j] = slots[p];
      continue;
    }
    ATTEND_CHECK(!free_slots.empty(), "session: out of cache slots");
    out[j] = free_slots.back();
    free_slots.pop_back();
    copies.from.push_back(slots[p]);
    copies.to.push_back(out[j]);
    copies.lengths.push_back(written[p]);
  }
  return out;
}

size_t complete_prefix(const std::string& text) {
  size_t start = text.size();
  while (start > 0 && (static_cast<unsigned char>(text[start - 1]) & 0xC0) == 0x80) --start;
  if (start == 0) return 0;
  const auto lead = static_cast<unsigned char>(text[start - 1]);
  const size_t need = lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
  return text.size() - (start - 1) >= need ? text.size() : start - 1;
}

int64_t max_output_length(const nn::DecoderOnly& model, int64_t prompt_len, int64_t max_new) {
  return std::min<int64_t>(max_new, model.config().max_positions + 1 - prompt_len);
}

namespace {

// The session's bookkeeping lives on the host; what a step needs of it goes to the model's device
// through to_device, and what the search needs of the step's logits comes back through fetch:
// one transfer each way per step (none on the CPU).
template <typename T>
Tensor to_device(const std::vector<T>& v, Device device) {
  const Tensor t = Tensor::from_vector(v, {static_cast<int64_t>(v.size())});
  return device.is_cpu() ? t : t.to(device);
}

// Reads prompts[k] into cache slots slots[k] in one causal pass (prefill) and calls
// use(which, logits) per batch: logits [which.size(), V] holds the last position of prompts
// which[0], which[1], ...
void prefill_prompts(const nn::DecoderOnly& model, const std::vector<std::vector<int32_t>>& prompts,
                     const std::vector<int32_t>& slots, nn::KvCache& cache,
                     const std::function<void(const std::vector<size_t>&, const Tensor&)>& use) {
  // Batches of similar length holding about kPrefillTokens padded positions (a longer prompt
  // gets a batch of its own); only each prompt's last position is projected onto the
  // vocabulary. Runs on the heap: a batch's activations are freed as it goes.
  constexpr int64_t kPrefillTokens = 8192;
  const nn::TransformerConfig& c = model.config();
  std::vector<size_t> order(prompts.size());  // shortest prompt first
  for (size_t k = 0; k < order.size(); ++k) order[k] = k;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return prompts[a].size() < prompts[b].size(); });
  HeapScope heap;
  for (size_t a = 0; a < order.size();) {
    size_t b = a + 1;
    int64_t T = static_cast<int64_t>(prompts[order[a]].size());
    while (b < order.size()) {
      const int64_t t = static_cast<int64_t>(prompts[order[b]].size());  // the longest
      if (t * static_cast<int64_t>(b - a + 1) > kPrefillTokens) break;
      T = t;
      ++b;
    }
    const int64_t n = static_cast<int64_t>(b - a);
    std::vector<int32_t> ids(static_cast<size_t>(n * T), c.pad_id), lengths, slot, last;
    std::vector<size_t> which;
    for (int64_t r = 0; r < n; ++r) {
      const size_t k = order[a + static_cast<size_t>(r)];
      const std::vector<int32_t>& p = prompts[k];
      ATTEND_CHECK(!p.empty(), "prefill: prompt {} has no tokens", k);
      std::copy(p.begin(), p.end(), ids.begin() + r * T);
      lengths.push_back(static_cast<int32_t>(p.size()));
      slot.push_back(slots[k]);
      last.push_back(static_cast<int32_t>(r * T + static_cast<int64_t>(p.size()) - 1));
      which.push_back(k);
    }
    const Device d = model.device();
    const Tensor hidden = model.prefill(to_device(ids, d).reshape({n, T}), to_device(lengths, d),
                                        to_device(slot, d), cache);  // [n, T, D]
    const Tensor rows_last =
        ops::embedding(to_device(last, d), hidden.reshape({n * T, c.d_model}));  // [n, D]
    use(which, model.project(ag::Variable(rows_last)).value().contiguous());
    a = b;
  }
}

}  // namespace

Session::Session(const nn::EncoderDecoder& model, const data::Tokenizer* tokenizer)
    : model_(model), encoder_decoder_(&model), tokenizer_(tokenizer), cache_(model.make_cache()) {}

Session::Session(const nn::DecoderOnly& model, const data::Tokenizer* tokenizer)
    : model_(model), decoder_only_(&model), tokenizer_(tokenizer), cache_(model.make_cache()) {}

int64_t Session::new_sentence(const Request& r, int64_t limit) {
  int64_t s;
  if (free_sentences_.empty()) {
    s = static_cast<int64_t>(sentences_.size());
    sentences_.emplace_back();
  } else {
    s = free_sentences_.back();
    free_sentences_.pop_back();
  }
  Sentence& sent = sentences_[static_cast<size_t>(s)];
  sent = Sentence{};
  sent.id = r.id;
  sent.options = r.options;
  sent.stream = r.stream;
  sent.limit = limit;
  sent.prefix = r.prefix;
  sent.pieces = r.pieces && tokenizer_;
  sent.active = true;
  return s;
}

void Session::admit(const std::vector<Request>& requests) {
  if (requests.empty()) return;
  const nn::TransformerConfig& c = model_.config();
  const int64_t vocab = decoder_only_ ? c.tgt_vocab : c.src_vocab;
  std::vector<int64_t> limits;
  for (const Request& r : requests) {  // all checked before any is admitted
    r.options.validate();
    if (decoder_only_) {
      ATTEND_CHECK(!r.source.empty() && static_cast<int64_t>(r.source.size()) <= c.max_positions,
                   "session: request {} has {} prompt ids, expected 1..{} (the model's context)",
                   r.id, r.source.size(), c.max_positions);
    } else {
      ATTEND_CHECK(!r.source.empty(), "session: request {} has an empty source", r.id);
    }
    for (const int32_t id : r.source)
      ATTEND_CHECK(id >= 0 && id < vocab,
                   "session: request {} has {} id {} outside the vocabulary of {}", r.id,
                   decoder_only_ ? "prompt" : "source", id, vocab);
    const auto n = static_cast<int64_t>(r.source.size());
    limits.push_back(decoder_only_ ? max_output_length(*decoder_only_, n, r.options.max_new)
                                   : max_output_length(*encoder_decoder_, n, r.options.max_extra,
                                                       r.options.max_length));
    for (const int32_t id : r.prefix)
      ATTEND_CHECK(
          id >= 0 && id < c.tgt_vocab && id != c.pad_id && id != c.bos_id && id != c.eos_id,
          "session: request {} has prefix id {}, not an output token of the vocabulary "
          "of {}",
          r.id, id, c.tgt_vocab);
    ATTEND_CHECK(static_cast<int64_t>(r.prefix.size()) <= std::max<int64_t>(limits.back(), 0),
                 "session: request {} has a prefix of {} tokens, but its outputs end at {} "
                 "(source length + max_extra, max_new, or the model's positions)",
                 r.id, r.prefix.size(), limits.back());
  }
  if (decoder_only_) {
    admit_prompts(requests, limits);
    return;
  }
  int64_t S = 0, rows = 0, positions = 0;
  for (size_t i = 0; i < requests.size(); ++i) {
    S = std::max<int64_t>(S, static_cast<int64_t>(requests[i].source.size()));
    rows += requests[i].options.beam;
    positions = std::max(positions, limits[i]);
  }
  const int64_t B = static_cast<int64_t>(requests.size());
  // Room for every hypothesis the active requests can have at once (beam each), their
  // positions and their sources; new slots join the free lists (lowest first).
  const int64_t old_slots = cache_.slots(), old_memory = cache_.memory_slots();
  cache_.reserve(reserved_rows_ + rows, std::max(positions, cache_.positions()),
                 active_requests() + B, std::max(S, cache_.source_positions()));
  for (int64_t s = cache_.slots() - 1; s >= old_slots; --s)
    free_slots_.push_back(static_cast<int32_t>(s));
  for (int64_t s = cache_.memory_slots() - 1; s >= old_memory; --s)
    free_memory_slots_.push_back(static_cast<int32_t>(s));
  reserved_rows_ += rows;

  // The encoder runs on the heap: its activations are freed as it goes, so the arena, sized by
  // the steps' far smaller needs, does not grow to hold a whole encoder pass.
  HeapScope heap;
  std::vector<int32_t> src(static_cast<size_t>(B * S), c.pad_id), lengths, memory_slots;
  for (int64_t b = 0; b < B; ++b) {
    const auto& ids = requests[static_cast<size_t>(b)].source;
    std::copy(ids.begin(), ids.end(), src.begin() + b * S);
    lengths.push_back(static_cast<int32_t>(ids.size()));
    memory_slots.push_back(free_memory_slots_.back());
    free_memory_slots_.pop_back();
  }
  const Tensor memory =
      encoder_decoder_->encode(to_device(src, model_.device()).reshape({B, S}),
                               to_device(lengths, model_.device()), 0)
          .value();
  encoder_decoder_->write_memory(memory, to_device(memory_slots, model_.device()), cache_);
  for (int64_t b = 0; b < B; ++b) {
    const int64_t s =
        new_sentence(requests[static_cast<size_t>(b)], limits[static_cast<size_t>(b)]);
    Sentence& sent = sentences_[static_cast<size_t>(s)];
    sent.memory_slot = memory_slots[static_cast<size_t>(b)];
    sent.source_length = lengths[static_cast<size_t>(b)];
    sent.prompt_length = 1;  // BOS
    live_.push_back({s, {}, 0.0, free_slots_.back()});
    free_slots_.pop_back();
  }
}

void Session::admit_prompts(const std::vector<Request>& requests,
                            const std::vector<int64_t>& limits) {
  int64_t rows = 0, positions = 1;
  std::vector<size_t> reading;  // requests with something to generate
  for (size_t i = 0; i < requests.size(); ++i) {
    if (limits[i] <= 0) {  // nothing to draw (max_new 0): done at once
      retired_.push_back({requests[i].id, {Hypothesis{}}});
      continue;
    }
    reading.push_back(i);
    rows += requests[i].options.beam;
    positions = std::max<int64_t>(positions,
                                  static_cast<int64_t>(requests[i].source.size()) + limits[i] - 1);
  }
  if (reading.empty()) return;
  const int64_t old_slots = cache_.slots();
  cache_.reserve(reserved_rows_ + rows, std::max(positions, cache_.positions()), 0, 0);
  for (int64_t s = cache_.slots() - 1; s >= old_slots; --s)
    free_slots_.push_back(static_cast<int32_t>(s));
  reserved_rows_ += rows;
  std::vector<std::vector<int32_t>> prompts;
  std::vector<int32_t> slots;
  std::vector<int64_t> sentence;
  for (const size_t i : reading) {
    const Request& r = requests[i];
    const int64_t s = new_sentence(r, limits[i]);
    Sentence& sent = sentences_[static_cast<size_t>(s)];
    sent.prompt_length = static_cast<int32_t>(r.source.size());
    sentence.push_back(s);
    prompts.push_back(r.source);
    slots.push_back(free_slots_.back());
    free_slots_.pop_back();
  }
  // Each prompt's last position gives its first token; the new live rows join in admission
  // order.
  std::unordered_map<int64_t, size_t> admitted;  // sentence -> its place among the new ones
  for (size_t k = 0; k < sentence.size(); ++k) admitted[sentence[k]] = k;
  std::vector<std::vector<Live>> grown(reading.size());
  prefill_prompts(*decoder_only_, prompts, slots, cache_,
                  [&](const std::vector<size_t>& which, const Tensor& logits) {
                    std::vector<Live> rows;
                    for (const size_t k : which) rows.push_back({sentence[k], {}, 0.0, slots[k]});
                    for (Live& h : advance(rows, logits))
                      grown[admitted.at(h.sentence)].push_back(std::move(h));
                  });
  for (auto& g : grown)
    for (Live& h : g) live_.push_back(std::move(h));
}

void Session::stream_text(Sentence& s, const std::vector<int32_t>& tokens, bool last) {
  if (!s.pieces) return;
  const std::string text = tokenizer_->decode(tokens);
  size_t end = last ? text.size() : complete_prefix(text);
  // A byte-level vocabulary decodes the first bytes of a character as U+FFFD until its last
  // byte comes: held back until then (or the end).
  if (!last)
    while (end >= 3 && text.compare(end - 3, 3, "\xEF\xBF\xBD") == 0) end -= 3;
  if (end > s.sent) {
    text_.emplace_back(s.id, text.substr(s.sent, end - s.sent));
    s.sent = end;
  }
}

void Session::finish_sentence(int64_t s) {
  Sentence& sent = sentences_[static_cast<size_t>(s)];
  auto& f = sent.finished;
  std::stable_sort(f.begin(), f.end(),
                   [](const Hypothesis& a, const Hypothesis& b) { return a.score > b.score; });
  if (static_cast<int64_t>(f.size()) > sent.options.n_best) f.resize(sent.options.n_best);
  if (!f.empty()) stream_text(sent, f[0].tokens, true);
  retired_.push_back({sent.id, std::move(f)});
  release_sentence(s);
}

void Session::release_sentence(int64_t s) {
  Sentence& sent = sentences_[static_cast<size_t>(s)];
  if (sent.memory_slot >= 0) free_memory_slots_.push_back(sent.memory_slot);
  free_sentences_.push_back(s);
  reserved_rows_ -= sent.options.beam;
  sent.finished.clear();
  sent.active = false;
}

bool Session::cancel(int64_t id) {
  for (size_t s = 0; s < sentences_.size(); ++s) {
    if (!sentences_[s].active || sentences_[s].id != id) continue;
    // Its live rows are contiguous; their slots go back to the free list.
    const int64_t si = static_cast<int64_t>(s);
    std::vector<Live> kept;
    kept.reserve(live_.size());
    for (Live& h : live_) {
      if (h.sentence != si) {
        kept.push_back(std::move(h));
      } else if (h.slot >= 0) {
        free_slots_.push_back(h.slot);
      }
    }
    live_.swap(kept);
    release_sentence(si);
    return true;
  }
  return false;
}

void Session::step() {
  if (live_.empty()) return;
  arena_.reset();
  ArenaScope scope(&arena_);
  const int64_t n = static_cast<int64_t>(live_.size());
  std::vector<int32_t> tokens(n), positions(n), slots(n), memory_slots, source_lengths;
  const nn::TransformerConfig& c = model_.config();
  for (int64_t r = 0; r < n; ++r) {
    const Live& h = live_[static_cast<size_t>(r)];
    const Sentence& s = sentences_[static_cast<size_t>(h.sentence)];
    tokens[r] = h.tokens.empty() ? c.bos_id : h.tokens.back();
    positions[r] = s.prompt_length - 1 + static_cast<int32_t>(h.tokens.size());
    slots[r] = h.slot;
    if (encoder_decoder_) {
      memory_slots.push_back(s.memory_slot);
      source_lengths.push_back(s.source_length);
    }
  }
  const Device d = model_.device();
  nn::DecodeRows rows{to_device(tokens, d), to_device(positions, d), to_device(slots, d), Tensor(),
                      Tensor(), 1 + *std::max_element(positions.begin(), positions.end())};
  Tensor hidden;
  if (encoder_decoder_) {
    rows.memory_slots = to_device(memory_slots, d);
    rows.source_lengths = to_device(source_lengths, d);
    hidden = encoder_decoder_->decode_rows(rows, cache_);
  } else {
    hidden = decoder_only_->decode_rows(rows, cache_);
  }
  const Tensor logits = model_.project(ag::Variable(hidden)).value();  // [n, V]
  live_ = advance(live_, logits);
}

// What the search reads of a step's logits: each row's log sum exp, the top candidates of beam
// rows, the logits of forced tokens, the drawn tokens and their logits.
struct Session::Readback {
  std::vector<float> lse, top_values, forced_logits, drawn_logits;
  std::vector<int32_t> top_ids, top_counts, drawn;
  int64_t k = 0;  // candidates per row in top_values and top_ids
};

Session::Readback Session::read_step(const std::vector<Live>& live, const Tensor& logits) const {
  const nn::TransformerConfig& c = model_.config();
  const int64_t n = static_cast<int64_t>(live.size());
  const Device device = logits.device();
  std::vector<int32_t> eos_banned(n);
  // Rows whose next token is forced (a prefix), and rows that draw (one per sampled sentence),
  // with their sampler settings.
  std::vector<int32_t> forced_rows, forced_ids, drawn_rows, top_k;
  std::vector<double> temperature, top_p;
  std::vector<float> uniform;
  int64_t k = 0;  // the most candidates a beam row needs (0: every row samples)
  for (int64_t r = 0; r < n; ++r) {
    const Live& h = live[static_cast<size_t>(r)];
    const Sentence& s = sentences_[static_cast<size_t>(h.sentence)];
    const SearchOptions& o = s.options;
    const auto done = static_cast<int64_t>(h.tokens.size());
    eos_banned[r] = done >= o.min_length && done >= static_cast<int64_t>(s.prefix.size())
                        ? -1
                        : c.eos_id;
    if (!o.sample) k = std::max<int64_t>(k, 2 * o.beam);
    if (done < static_cast<int64_t>(s.prefix.size())) {
      forced_rows.push_back(static_cast<int32_t>(r));
      forced_ids.push_back(s.prefix[static_cast<size_t>(done)]);
    } else if (o.sample) {
      drawn_rows.push_back(static_cast<int32_t>(r));
      top_k.push_back(o.top_k);
      temperature.push_back(o.temperature);
      top_p.push_back(o.top_p);
      uniform.push_back(philox_uniform(o.seed, s.stream, static_cast<uint64_t>(done)));
    }
  }
  // Computed where the logits live: a candidate's log-probability is logit - logsumexp(row), so
  // no [n, V] log-softmax is written, and with beam rows the top-k and the log sum exp come from
  // one pass over the logits.
  // Never drawn: pad, unk and bos -- unless one is the end id (GPT-2's <|endoftext|> is all four).
  std::vector<int32_t> banned;
  for (const int32_t id : {c.pad_id, c.unk_id, c.bos_id})
    if (id != c.eos_id) banned.push_back(id);
  const Tensor row_banned = to_device(eos_banned, device);
  ops::TopKLse top;
  if (k > 0)
    top = ops::top_k_logsumexp(logits, k, banned, row_banned);
  else
    top.lse = ops::logsumexp(logits);
  Tensor forced_logits, drawn, drawn_logits;  // the forced and drawn tokens' logits
  if (!forced_rows.empty())
    forced_logits =
        ops::pick(logits, to_device(forced_rows, device), to_device(forced_ids, device));
  if (!drawn_rows.empty()) {
    const Tensor rows = to_device(drawn_rows, device);
    drawn = ops::sample(logits,
                        {rows, to_device(temperature, device), to_device(top_k, device),
                         to_device(top_p, device), to_device(uniform, device)},
                        banned, row_banned);
    drawn_logits = ops::pick(logits, rows, drawn);
  }
  // The step's one transfer to the host: those few numbers.
  Readback b;
  b.k = k;
  b.lse = top.lse.to_vector<float>();
  if (k > 0) {
    b.top_values = top.top.values.to_vector<float>();
    b.top_ids = top.top.indices.to_vector<int32_t>();
    b.top_counts = top.top.counts.to_vector<int32_t>();
  }
  if (forced_logits.defined()) b.forced_logits = forced_logits.to_vector<float>();
  if (drawn.defined()) {
    b.drawn = drawn.to_vector<int32_t>();
    b.drawn_logits = drawn_logits.to_vector<float>();
  }
  return b;
}

std::vector<Session::Live> Session::advance(const std::vector<Live>& live, const Tensor& logits) {
  const nn::TransformerConfig& c = model_.config();
  const int64_t n = static_cast<int64_t>(live.size());
  std::vector<int32_t> slots(n), written(n);
  for (int64_t r = 0; r < n; ++r) {
    const Live& h = live[static_cast<size_t>(r)];
    slots[r] = h.slot;
    written[r] = sentences_[static_cast<size_t>(h.sentence)].prompt_length +
                 static_cast<int32_t>(h.tokens.size());  // positions in its cache slot
  }
  const Readback back = read_step(live, logits);
  const std::vector<float>& lse = back.lse;
  const std::vector<float>& top_values = back.top_values;
  const std::vector<int32_t>& top_ids = back.top_ids;
  const std::vector<int32_t>& top_counts = back.top_counts;
  const int64_t k = back.k;
  size_t next_forced = 0, next_drawn = 0;

  struct Candidate {
    double log_prob;
    int64_t row;
    int32_t token;
  };
  std::vector<Candidate> cands;
  std::vector<Live> next;
  std::vector<int64_t> parent;  // the live row each next hypothesis extends
  auto finish = [&](Sentence& s, const Live& h, int32_t token, double log_prob, bool ended) {
    Hypothesis hyp;
    hyp.tokens = h.tokens;
    if (!ended) hyp.tokens.push_back(token);
    hyp.log_prob = log_prob;
    hyp.ended = ended;
    hyp.score =
        log_prob / length_penalty(static_cast<int64_t>(h.tokens.size()) + 1, s.options.alpha);
    s.finished.push_back(std::move(hyp));
  };
  auto grow = [&](int64_t si, const Live& from, int32_t token, double log_prob, int64_t row) {
    Live grown{si, from.tokens, log_prob, -1};
    grown.tokens.push_back(token);
    next.push_back(std::move(grown));
    parent.push_back(row);
  };
  for (int64_t g0 = 0, g1 = 0; g0 < n; g0 = g1) {
    const int64_t si = live[static_cast<size_t>(g0)].sentence;
    Sentence& s = sentences_[static_cast<size_t>(si)];
    const SearchOptions& o = s.options;
    while (g1 < n && live[static_cast<size_t>(g1)].sentence == si) ++g1;
    // Every hypothesis of a sentence has the same length: the steps it has run.
    const int64_t len = static_cast<int64_t>(live[static_cast<size_t>(g0)].tokens.size()) + 1;
    if (len <= static_cast<int64_t>(s.prefix.size())) {  // a forced token (admit checked the limit)
      const int32_t v = s.prefix[static_cast<size_t>(len - 1)];
      for (int64_t r = g0; r < g1; ++r) {
        const Live& h = live[static_cast<size_t>(r)];
        const float logit = back.forced_logits[next_forced++];
        const double log_prob = h.log_prob + (logit - lse[static_cast<size_t>(r)]);
        if (len >= s.limit) {  // a prefix as long as the outputs may be is the whole output
          finish(s, h, v, log_prob, false);
          continue;
        }
        grow(si, h, v, log_prob, r);
        stream_text(s, next.back().tokens, false);
      }
      if (len >= s.limit) finish_sentence(si);
      continue;
    }
    if (o.sample) {  // one row: draw, finish on EOS or at the length limit
      const Live& h = live[static_cast<size_t>(g0)];
      const int32_t v = back.drawn[next_drawn];
      const float logit = back.drawn_logits[next_drawn++];
      const double log_prob = h.log_prob + (logit - lse[static_cast<size_t>(g0)]);
      const bool ends = v == c.eos_id && o.stop_at_eos;
      if (ends || len >= s.limit) {
        finish(s, h, v, log_prob, ends);
        finish_sentence(si);
        continue;
      }
      grow(si, h, v, log_prob, g0);
      stream_text(s, next.back().tokens, false);
      continue;
    }
    const int64_t K = o.beam;
    cands.clear();
    for (int64_t r = g0; r < g1; ++r) {
      const double base = live[static_cast<size_t>(r)].log_prob;
      for (int64_t i = 0; i < std::min<int64_t>(2 * K, top_counts[r]); ++i)
        cands.push_back({base + (top_values[r * k + i] - lse[r]), r, top_ids[r * k + i]});
    }
    std::stable_sort(cands.begin(), cands.end(), [](const Candidate& a, const Candidate& b) {
      return a.log_prob > b.log_prob;
    });
    int64_t kept = 0;
    for (int64_t ci = 0; ci < static_cast<int64_t>(cands.size()) && kept < K; ++ci) {
      const Candidate& x = cands[ci];
      const Live& from = live[static_cast<size_t>(x.row)];
      const bool ends = x.token == c.eos_id && o.stop_at_eos;
      if (ends || len >= s.limit) {
        // Only extensions ranked within the beam may finish (a worse EOS is not a contender).
        if (ci < K) finish(s, from, x.token, x.log_prob, ends);
        continue;
      }
      grow(si, from, x.token, x.log_prob, x.row);
      ++kept;
    }
    if (cands.empty())  // nothing may follow (min_length with no token but EOS): stop here
      for (int64_t r = g0; r < g1; ++r)
        finish(s, live[static_cast<size_t>(r)], c.eos_id, live[static_cast<size_t>(r)].log_prob,
               true);
    // Done once `beam` hypotheses have finished and the best live one, scored at its current
    // length, cannot beat the worst of the `beam` best finished ones; a confident live
    // hypothesis is not cut off by early, poorer hypotheses that happened to end first.
    bool done = kept == 0;
    auto& f = s.finished;
    if (!done && static_cast<int64_t>(f.size()) >= K) {
      std::nth_element(f.begin(), f.begin() + (K - 1), f.end(),
                       [](const Hypothesis& a, const Hypothesis& b) { return a.score > b.score; });
      const double best_live = next[next.size() - static_cast<size_t>(kept)].log_prob;
      done = f[static_cast<size_t>(K - 1)].score >= best_live / length_penalty(len, o.alpha);
    }
    if (done) {
      next.resize(next.size() - static_cast<size_t>(kept));  // its live rows leave
      parent.resize(parent.size() - static_cast<size_t>(kept));
      finish_sentence(si);
    } else if (K == 1) {
      stream_text(s, next.back().tokens, false);
    }
  }
  // Slots: a parent's first child inherits its slot, later children get a free slot and a copy
  // of the parent's positions; slots of parents without children are freed first.
  SlotCopies copies;
  const std::vector<int32_t> child = child_slots(slots, written, parent, free_slots_, copies);
  for (size_t j = 0; j < next.size(); ++j) next[j].slot = child[j];
  if (!copies.from.empty())
    cache_.copy_slots(to_device(copies.from, model_.device()),
                      to_device(copies.to, model_.device()),
                      to_device(copies.lengths, model_.device()));
  return next;
}

std::vector<Result> Session::retire() {
  std::vector<Result> out;
  out.swap(retired_);
  return out;
}

namespace {

// Decodes `requests` as one batch in `session` to the end; result r goes to out[r.id].
void run_batch(Session& session, const std::vector<Request>& requests,
               std::vector<std::vector<Hypothesis>>& out, const StepCheck& check = {}) {
  if (check) check();
  session.admit(requests);
  while (!session.idle()) {
    if (check) check();
    session.step();
  }
  for (auto& r : session.retire()) out[static_cast<size_t>(r.id)] = std::move(r.hypotheses);
}

}  // namespace

namespace {
void check_prefixes(const std::vector<std::vector<int32_t>>& prefixes, size_t sources) {
  ATTEND_CHECK(prefixes.empty() || prefixes.size() == sources, "search: {} prefixes for {} sources",
               prefixes.size(), sources);
}
const std::vector<int32_t>& prefix_of(const std::vector<std::vector<int32_t>>& prefixes, size_t i) {
  static const std::vector<int32_t> none;
  return prefixes.empty() ? none : prefixes[i];
}
}  // namespace

std::vector<std::vector<Hypothesis>> search(const nn::EncoderDecoder& model,
                                            const std::vector<std::vector<int32_t>>& sources,
                                            const SearchOptions& options,
                                            const std::vector<uint64_t>& streams,
                                            const std::vector<std::vector<int32_t>>& prefixes) {
  options.validate();
  ATTEND_CHECK(streams.empty() || streams.size() == sources.size(),
               "search: {} streams for {} sources", streams.size(), sources.size());
  check_prefixes(prefixes, sources.size());
  std::vector<std::vector<Hypothesis>> out(sources.size(), std::vector<Hypothesis>(1));
  std::vector<Request> requests;
  for (size_t i = 0; i < sources.size(); ++i) {
    if (sources[i].empty()) continue;  // an empty source translates to an empty output
    requests.push_back({sources[i], options, streams.empty() ? i : streams[i],
                        static_cast<int64_t>(i), prefix_of(prefixes, i)});
  }
  Session session(model);
  run_batch(session, requests, out);
  return out;
}

std::vector<std::vector<Hypothesis>> search_all(const nn::EncoderDecoder& model,
                                                const std::vector<std::vector<int32_t>>& sources,
                                                int64_t max_tokens, const SearchOptions& options,
                                                const std::vector<std::vector<int32_t>>& prefixes,
                                                const StepCheck& check) {
  options.validate();
  ATTEND_CHECK(max_tokens >= 1, "search: max_tokens must be >= 1, got {}", max_tokens);
  check_prefixes(prefixes, sources.size());
  // Non-empty sources sorted by length (stable), packed while rows * longest <= max_tokens (a
  // source longer than that gets a batch of its own).
  std::vector<size_t> order;
  for (size_t i = 0; i < sources.size(); ++i)
    if (!sources[i].empty()) order.push_back(i);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return sources[a].size() < sources[b].size(); });
  std::vector<std::vector<Hypothesis>> out(sources.size(), std::vector<Hypothesis>(1));
  Session session(model);  // its cache and arena serve every batch
  std::vector<Request> batch;
  int64_t longest = 0;
  auto run = [&] {
    run_batch(session, batch, out, check);
    batch.clear();
    longest = 0;
  };
  for (const size_t i : order) {
    const int64_t len = static_cast<int64_t>(sources[i].size());
    if (!batch.empty() &&
        std::max(longest, len) * static_cast<int64_t>(batch.size() + 1) > max_tokens)
      run();
    batch.push_back({sources[i], options, static_cast<uint64_t>(i), static_cast<int64_t>(i),
                     prefix_of(prefixes, i)});
    longest = std::max(longest, len);
  }
  if (!batch.empty()) run();
  return out;
}

}  // namespace attend::decode
