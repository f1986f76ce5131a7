// Beam search and sampling (see search.h).
#include "decode/search.h"

#include <algorithm>
#include <cmath>

#include "core/allocator.h"
#include "core/error.h"
#include "core/rng.h"
#include "core/thread_pool.h"
#include "data/tokenizer.h"
#include "ops/ops.h"

namespace attend::decode {

void SearchOptions::validate() const {
  ATTEND_CHECK(beam >= 1, "search: beam must be >= 1, got {}", beam);
  ATTEND_CHECK(n_best >= 1 && n_best <= beam, "search: n_best must be in [1, beam = {}], got {}",
               beam, n_best);
  ATTEND_CHECK(std::isfinite(alpha) && alpha >= 0, "search: alpha must be >= 0, got {}", alpha);
  ATTEND_CHECK(max_extra >= 0, "search: max_extra must be >= 0, got {}", max_extra);
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

int64_t max_output_length(const nn::Transformer& model, int64_t src_len, int64_t max_extra) {
  int64_t limit = src_len + max_extra;
  if (model.config().positions == "learned")
    limit = std::min<int64_t>(limit, model.config().max_positions);
  return std::max<int64_t>(limit, 1);
}

std::vector<int64_t> output_limits(const nn::Transformer& model, const data::Batch& batch,
                                   int64_t max_extra) {
  const int32_t* sl = batch.src_lengths.data<int32_t>();
  std::vector<int64_t> limit(static_cast<size_t>(batch.src.size(0)));
  for (size_t b = 0; b < limit.size(); ++b) limit[b] = max_output_length(model, sl[b], max_extra);
  return limit;
}

namespace {

using Scored = std::pair<float, int32_t>;  // (logit, token)

// The `count` highest logits of a row among the tokens a hypothesis may emit (never pad, unk or
// BOS; EOS only when allowed), best first; equal logits keep the lower id first, as greedy does.
void top_tokens(const float* row, int64_t V, int64_t count, bool allow_eos, std::vector<Scored>& out) {
  out.clear();
  for (int64_t v0 = data::kEosId; v0 < V; v0 += 16) {
    const int64_t v1 = std::min<int64_t>(V, v0 + 16);
    if (static_cast<int64_t>(out.size()) == count) {  // skip blocks with nothing above the k-th
      const float kth = out.back().first;
      bool any = false;
      for (int64_t v = v0; v < v1; ++v) any |= row[v] > kth;
      if (!any) continue;
    }
    for (int64_t v = v0; v < v1; ++v) {
      if (v == data::kEosId && !allow_eos) continue;
      const float x = row[v];
      if (static_cast<int64_t>(out.size()) == count && !(x > out.back().first)) continue;
      const auto at = std::upper_bound(out.begin(), out.end(), x,
                                       [](float a, const Scored& c) { return a > c.first; });
      if (static_cast<int64_t>(out.size()) == count) out.pop_back();
      out.insert(at, {x, static_cast<int32_t>(v)});
    }
  }
}

// A decoding step's tensors come from one of two arenas, reset every other step: what a step
// leaves in the cache is read by the next step only (which appends to a copy). What is
// regathered when sentences leave the batch goes to the heap: the rows' sentence map and source
// lengths live for many steps. The arenas are per thread and kept across calls, so that each
// batch reuses the pages the previous one touched instead of faulting in fresh memory.
Arena& step_arena(int64_t step) {
  static thread_local Arena arenas[2];
  Arena& a = arenas[step % 2];
  a.reset();
  return a;
}

struct Live {  // a live hypothesis: one cache row
  int64_t sentence;
  std::vector<int32_t> tokens;
  double log_prob;
};

std::vector<std::vector<Hypothesis>> beam_search(const nn::Transformer& model,
                                                 const data::Batch& batch, const SearchOptions& o) {
  HeapScope heap;
  const int64_t B = batch.src.size(0), K = o.beam;
  const std::vector<int64_t> limit = output_limits(model, batch, o.max_extra);
  const Tensor memory = model.encode(batch.src, batch.src_lengths, 0).value();
  nn::DecoderState state = model.start_decoding(memory, batch.src_lengths);
  std::vector<Live> live;  // ordered by sentence: each sentence owns a contiguous block of rows
  for (int64_t b = 0; b < B; ++b) live.push_back({b, {}, 0.0});
  std::vector<int32_t> input(B, data::kBosId);
  std::vector<std::vector<Hypothesis>> finished(B);
  std::vector<std::vector<Scored>> top;
  struct Candidate {
    double log_prob;
    int64_t row;
    int32_t token;
  };
  std::vector<Candidate> cands;
  auto finish = [&](int64_t s, const Live& h, int32_t token, double log_prob) {
    Hypothesis hyp;
    hyp.tokens = h.tokens;
    if (token != data::kEosId) hyp.tokens.push_back(token);
    hyp.log_prob = log_prob;
    hyp.score = log_prob / length_penalty(static_cast<int64_t>(h.tokens.size()) + 1, o.alpha);
    finished[s].push_back(std::move(hyp));
  };
  for (int64_t step = 0; !live.empty(); ++step) {
    ArenaScope scope(&step_arena(step));
    const int64_t n = static_cast<int64_t>(live.size());
    const Tensor h = model.decode_step(Tensor::from_vector(input, {n}), state);
    const Tensor logits = model.project(ag::Variable(h)).value();  // [n, V]
    // Only the 2K candidates of a row need their log-probability logit - lse: no [n, V] write.
    const Tensor lse_t = ops::logsumexp(logits);
    const int64_t V = logits.size(1);
    const float* lg = logits.data<float>();
    const float* lse = lse_t.data<float>();
    top.resize(n);
    parallel_for(n, 8, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r)
        top_tokens(lg + r * V, V, 2 * K,
                   static_cast<int64_t>(live[r].tokens.size()) >= o.min_length, top[r]);
    });
    std::vector<Live> next;
    std::vector<int64_t> rows;  // cache row each next hypothesis extends
    std::vector<int32_t> next_input;
    for (int64_t g0 = 0, g1 = 0; g0 < n; g0 = g1) {
      const int64_t s = live[g0].sentence;
      while (g1 < n && live[g1].sentence == s) ++g1;
      cands.clear();
      for (int64_t r = g0; r < g1; ++r)
        for (const auto& [logit, v] : top[r])
          cands.push_back({live[r].log_prob + (lg[r * V + v] - lse[r]), r, v});
      std::stable_sort(cands.begin(), cands.end(),
                       [](const Candidate& a, const Candidate& b) { return a.log_prob > b.log_prob; });
      // Every hypothesis of a sentence has the same length: the step count.
      const int64_t len = static_cast<int64_t>(live[g0].tokens.size()) + 1;
      int64_t kept = 0;
      for (int64_t c = 0; c < static_cast<int64_t>(cands.size()) && kept < K; ++c) {
        const Candidate& x = cands[c];
        if (x.token == data::kEosId || len >= limit[s]) {
          // Only extensions ranked within the beam may finish (a worse EOS is not a contender).
          if (c < K) finish(s, live[x.row], x.token, x.log_prob);
          continue;
        }
        Live grown{s, live[x.row].tokens, x.log_prob};
        grown.tokens.push_back(x.token);
        next.push_back(std::move(grown));
        rows.push_back(x.row);
        next_input.push_back(x.token);
        ++kept;
      }
      if (cands.empty()) {  // nothing may follow (min_length with no token but EOS): stop here
        for (int64_t r = g0; r < g1; ++r)
          finish(s, live[r], data::kEosId, live[r].log_prob);
      }
      // Done once `beam` hypotheses have finished and the best live one, scored at its current
      // length, cannot beat the worst of the `beam` best finished ones; a confident live
      // hypothesis is not cut off by early, poorer hypotheses that happened to end first.
      bool done = kept == 0;
      auto& f = finished[s];
      if (!done && static_cast<int64_t>(f.size()) >= K) {
        std::nth_element(f.begin(), f.begin() + (K - 1), f.end(),
                         [](const Hypothesis& a, const Hypothesis& b) { return a.score > b.score; });
        const double best_live = next[next.size() - static_cast<size_t>(kept)].log_prob;
        done = f[static_cast<size_t>(K - 1)].score >= best_live / length_penalty(len, o.alpha);
      }
      if (done && kept > 0) {  // its live rows leave
        next.resize(next.size() - kept);
        rows.resize(rows.size() - kept);
        next_input.resize(next_input.size() - kept);
      }
    }
    if (next.empty()) break;
    // Beams reordered within unchanged sentence blocks keep the encoder keys/values in place.
    bool same_blocks = next.size() == live.size();
    for (size_t j = 0; same_blocks && j < next.size(); ++j)
      same_blocks = next[j].sentence == live[j].sentence;
    if (same_blocks) {
      nn::Transformer::select_rows(state, rows, /*self_only=*/true);
    } else {
      HeapScope on_heap;
      nn::Transformer::select_rows(state, rows);
    }
    live.swap(next);
    input.swap(next_input);
  }
  for (auto& f : finished) {
    std::stable_sort(f.begin(), f.end(),
                     [](const Hypothesis& a, const Hypothesis& b) { return a.score > b.score; });
    if (static_cast<int64_t>(f.size()) > o.n_best) f.resize(o.n_best);
  }
  return finished;
}

// Draws a token from the tempered, top-k / top-p truncated distribution of one logits row.
int32_t draw(const float* row, int64_t V, bool allow_eos, const SearchOptions& o, float u,
             std::vector<Scored>& buf) {
  buf.clear();
  for (int32_t v = data::kEosId; v < V; ++v)
    if (v != data::kEosId || allow_eos) buf.push_back({row[v], v});
  ATTEND_CHECK(!buf.empty(), "sample: no token may be emitted (vocabulary of {})", V);
  auto better = [](const Scored& a, const Scored& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  size_t keep = buf.size();
  if (o.top_k > 0 && static_cast<size_t>(o.top_k) < keep) keep = static_cast<size_t>(o.top_k);
  std::partial_sort(buf.begin(), buf.begin() + static_cast<int64_t>(keep), buf.end(), better);
  buf.resize(keep);
  std::vector<double> p(keep);
  double total = 0;
  for (size_t i = 0; i < keep; ++i) {
    p[i] = std::exp((static_cast<double>(buf[i].first) - buf[0].first) / o.temperature);
    total += p[i];
  }
  if (o.top_p < 1) {  // the smallest prefix whose probability reaches top_p
    double mass = 0;
    size_t cut = 0;
    while (cut < keep) {
      mass += p[cut++] / total;
      if (mass >= o.top_p) break;
    }
    keep = cut;
    total = 0;
    for (size_t i = 0; i < keep; ++i) total += p[i];
  }
  double target = static_cast<double>(u) * total;
  for (size_t i = 0; i < keep; ++i) {
    target -= p[i];
    if (target < 0) return buf[i].second;
  }
  return buf[keep - 1].second;
}

std::vector<std::vector<Hypothesis>> sample(const nn::Transformer& model, const data::Batch& batch,
                                            const SearchOptions& o) {
  HeapScope heap;
  const int64_t B = batch.src.size(0);
  const std::vector<int64_t> limit = output_limits(model, batch, o.max_extra);
  const Tensor memory = model.encode(batch.src, batch.src_lengths, 0).value();
  nn::DecoderState state = model.start_decoding(memory, batch.src_lengths);
  std::vector<std::vector<Hypothesis>> out(B, std::vector<Hypothesis>(1));
  std::vector<int64_t> alive(B);
  for (int64_t b = 0; b < B; ++b) alive[b] = b;
  std::vector<int32_t> tokens(B, data::kBosId);
  std::vector<Scored> buf;
  for (int64_t step = 0; !alive.empty(); ++step) {
    ArenaScope scope(&step_arena(step));
    const int64_t n = static_cast<int64_t>(alive.size());
    const Tensor h = model.decode_step(Tensor::from_vector(tokens, {n}), state);
    const Tensor logits = model.project(ag::Variable(h)).value();
    const Tensor logp = ops::log_softmax(logits);
    const int64_t V = logits.size(1);
    std::vector<int64_t> keep;
    std::vector<int32_t> next;
    for (int64_t r = 0; r < n; ++r) {
      const int64_t b = alive[r];
      Hypothesis& hyp = out[b][0];
      const uint64_t stream = static_cast<size_t>(b) < batch.indices.size()
                                  ? static_cast<uint64_t>(batch.indices[b]) : static_cast<uint64_t>(b);
      const int32_t v = draw(logits.data<float>() + r * V, V,
                             static_cast<int64_t>(hyp.tokens.size()) >= o.min_length, o,
                             philox_uniform(o.seed, stream, static_cast<uint64_t>(step)), buf);
      hyp.log_prob += logp.data<float>()[r * V + v];
      if (v != data::kEosId) hyp.tokens.push_back(v);
      const int64_t len = static_cast<int64_t>(hyp.tokens.size());
      if (v == data::kEosId || len >= limit[b]) {
        hyp.score = hyp.log_prob / length_penalty(step + 1, o.alpha);
        continue;
      }
      keep.push_back(r);
      next.push_back(v);
    }
    if (static_cast<int64_t>(keep.size()) != n) {
      {
        HeapScope on_heap;
        nn::Transformer::select_rows(state, keep);
      }
      std::vector<int64_t> still;
      for (int64_t r : keep) still.push_back(alive[r]);
      alive.swap(still);
    }
    tokens.swap(next);
  }
  return out;
}

}  // namespace

std::vector<std::vector<Hypothesis>> search(const nn::Transformer& model, const data::Batch& batch,
                                            const SearchOptions& options) {
  options.validate();
  return options.sample ? sample(model, batch, options) : beam_search(model, batch, options);
}

std::vector<std::vector<Hypothesis>> search_all(const nn::Transformer& model,
                                                const std::vector<data::Example>& examples,
                                                int64_t max_tokens, const SearchOptions& options) {
  options.validate();
  std::vector<data::Example> src_only;  // non-empty sources; an empty one translates to ""
  std::vector<size_t> where;
  for (size_t i = 0; i < examples.size(); ++i) {
    if (examples[i].src.empty()) continue;
    src_only.push_back({examples[i].src, {}});
    where.push_back(i);
  }
  std::vector<std::vector<Hypothesis>> out(examples.size(), std::vector<Hypothesis>(1));
  for (const auto& rows : data::sorted_plan(src_only, max_tokens)) {
    data::Batch b = data::make_batch(src_only, rows);
    for (auto& idx : b.indices) idx = static_cast<int64_t>(where[static_cast<size_t>(idx)]);
    auto res = search(model, b, options);
    for (size_t r = 0; r < rows.size(); ++r) out[where[rows[r]]] = std::move(res[r]);
  }
  return out;
}

}  // namespace attend::decode
