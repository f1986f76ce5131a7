// Greedy decoding (see greedy.h).
#include "decode/greedy.h"

#include <algorithm>

#include "decode/session.h"
#include "ops/ops.h"

namespace attend::decode {

std::vector<std::vector<int32_t>> greedy(const nn::EncoderDecoder& model,
                                         const std::vector<std::vector<int32_t>>& sources,
                                         const GreedyOptions& o) {
  SearchOptions so;
  so.beam = 1;
  so.alpha = 0;
  so.max_extra = o.max_extra;
  std::vector<std::vector<int32_t>> out;
  for (auto& h : search(model, sources, so)) out.push_back(std::move(h[0].tokens));
  return out;
}

std::vector<std::vector<int32_t>> greedy_reference(const nn::EncoderDecoder& model,
                                                   const std::vector<std::vector<int32_t>>& sources,
                                                   const GreedyOptions& o) {
  HeapScope heap;
  const nn::TransformerConfig& c = model.config();
  const int64_t B = static_cast<int64_t>(sources.size()), D = c.d_model;
  int64_t S = 1, T = 1;
  std::vector<int64_t> limit;
  for (const auto& s : sources) {
    S = std::max<int64_t>(S, static_cast<int64_t>(s.size()));
    limit.push_back(max_output_length(model, static_cast<int64_t>(s.size()), o.max_extra));
    T = std::max(T, limit.back());
  }
  std::vector<int32_t> src(static_cast<size_t>(B * S), c.pad_id), src_len;
  for (int64_t b = 0; b < B; ++b) {
    std::copy(sources[b].begin(), sources[b].end(), src.begin() + b * S);
    src_len.push_back(static_cast<int32_t>(sources[b].size()));
  }
  const Tensor src_lengths = Tensor::from_vector(src_len, {B});
  const ag::Variable memory = model.encode(Tensor::from_vector(src, {B, S}), src_lengths, 0);
  std::vector<std::vector<int32_t>> out(B);
  std::vector<bool> done(B, false);
  std::vector<int32_t> prefix(static_cast<size_t>(B), c.bos_id);  // [B, t] row-major
  for (int64_t t = 1; t <= T; ++t) {
    const Tensor tgt_in = Tensor::from_vector(prefix, {B, t});
    const Tensor tgt_len = Tensor::from_vector(std::vector<int32_t>(B, static_cast<int32_t>(t)), {B});
    const ag::Variable h = model.decode(tgt_in, tgt_len, memory, src_lengths, 0);
    const Tensor last = h.value().slice(1, t - 1, t).contiguous().reshape({B, D});
    const Tensor logits = model.project(ag::Variable(last)).value();  // [B, V]
    // The best token of each row, never pad, unk or BOS (ties: the lower id).
    const auto best = ops::top_k(logits, 1, {c.pad_id, c.unk_id, c.bos_id}).indices.to_vector<int32_t>();
    std::vector<int32_t> next(B, c.pad_id);
    bool all = true;
    for (int64_t b = 0; b < B; ++b) {
      if (done[b]) continue;
      if (best[b] == c.eos_id || t >= limit[b]) {
        if (best[b] != c.eos_id) out[b].push_back(best[b]);
        done[b] = true;
      } else {
        out[b].push_back(best[b]);
        next[b] = best[b];
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
