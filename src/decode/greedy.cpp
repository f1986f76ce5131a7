// Greedy decoding (see greedy.h).
#include "decode/greedy.h"

#include <algorithm>

#include "data/tokenizer.h"
#include "decode/search.h"

namespace attend::decode {

namespace {

// Highest-scoring token of a logits row, never pad/unk/bos.
int32_t best_token(const float* row, int64_t V) {
  int32_t best = data::kEosId;
  for (int32_t v = data::kEosId; v < V; ++v)
    if (row[v] > row[best]) best = v;
  return best;
}

}  // namespace

std::vector<std::vector<int32_t>> greedy(const nn::Transformer& model, const data::Batch& batch,
                                         const GreedyOptions& o) {
  HeapScope heap;
  const int64_t B = batch.src.size(0);
  const std::vector<int64_t> limit = output_limits(model, batch, o.max_extra);
  const Tensor memory = model.encode(batch.src, batch.src_lengths, 0).value();
  nn::DecoderState state = model.start_decoding(memory, batch.src_lengths);
  std::vector<std::vector<int32_t>> out(B);
  std::vector<int64_t> alive(B);  // batch row of each cache row
  for (int64_t b = 0; b < B; ++b) alive[b] = b;
  std::vector<int32_t> tokens(B, data::kBosId);
  while (!alive.empty()) {
    const int64_t n = static_cast<int64_t>(alive.size());
    const Tensor h = model.decode_step(Tensor::from_vector(tokens, {n}), state);
    const Tensor logits = model.project(ag::Variable(h)).value();  // [n, V]
    const int64_t V = logits.size(1);
    std::vector<int64_t> keep;
    std::vector<int32_t> next;
    for (int64_t r = 0; r < n; ++r) {
      const int64_t b = alive[r];
      const int32_t best = best_token(logits.data<float>() + r * V, V);
      if (best == data::kEosId) continue;
      out[b].push_back(best);
      if (static_cast<int64_t>(out[b].size()) >= limit[b]) continue;
      keep.push_back(r);
      next.push_back(best);
    }
    if (static_cast<int64_t>(keep.size()) != n) {  // finished rows leave the batch
      nn::Transformer::select_rows(state, keep);
      std::vector<int64_t> still;
      for (int64_t r : keep) still.push_back(alive[r]);
      alive.swap(still);
    }
    tokens.swap(next);
  }
  return out;
}

std::vector<std::vector<int32_t>> greedy_reference(const nn::Transformer& model,
                                                   const data::Batch& batch,
                                                   const GreedyOptions& o) {
  HeapScope heap;
  const int64_t B = batch.src.size(0), D = model.config().d_model;
  const std::vector<int64_t> limit = output_limits(model, batch, o.max_extra);
  const int64_t T = *std::max_element(limit.begin(), limit.end());
  const ag::Variable memory = model.encode(batch.src, batch.src_lengths, 0);
  std::vector<std::vector<int32_t>> out(B);
  std::vector<bool> done(B, false);
  std::vector<int32_t> prefix(static_cast<size_t>(B), data::kBosId);  // [B, t] row-major
  for (int64_t t = 1; t <= T; ++t) {
    const Tensor tgt_in = Tensor::from_vector(prefix, {B, t});
    const Tensor tgt_len = Tensor::from_vector(std::vector<int32_t>(B, static_cast<int32_t>(t)), {B});
    const ag::Variable h = model.decode(tgt_in, tgt_len, memory, batch.src_lengths, 0);
    const Tensor last = h.value().slice(1, t - 1, t).contiguous().reshape({B, D});
    const Tensor logits = model.project(ag::Variable(last)).value();  // [B, V]
    const int64_t V = logits.size(1);
    const float* lp = logits.data<float>();
    std::vector<int32_t> next(B, data::kPadId);
    bool all = true;
    for (int64_t b = 0; b < B; ++b) {
      if (done[b]) continue;
      const int32_t best = best_token(lp + b * V, V);
      if (best == data::kEosId || t >= limit[b]) {
        if (best != data::kEosId) out[b].push_back(best);
        done[b] = true;
      } else {
        out[b].push_back(best);
        next[b] = best;
        all = false;
      }
    }
    if (all) break;
    std::vector<int32_t> grown(static_cast<size_t>(B * (t + 1)));
    for (int64_t b = 0; b < B; ++b) {
      std::copy(prefix.begin() + b * t, prefix.begin() + (b + 1) * t, grown.begin() + b * (t + 1));
      grown[b * (t + 1) + t] = next[b];
    }
    prefix.swap(grown);
  }
  return out;
}

}  // namespace attend::decode
