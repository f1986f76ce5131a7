// Beam search and sampling over the incremental decoder (see greedy.h for the cache).
//
// Beam search keeps `beam` live hypotheses per sentence, all sentences of a batch side by side
// in one decoder batch (sentence s owns a contiguous block of cache rows). Each step it takes the
// 2 * beam best extensions of a sentence's hypotheses by total log-probability; an extension by
// EOS among the first `beam` of them finishes a hypothesis, the best non-EOS ones fill the next
// beam. A sentence is done when none is live, or when `beam` hypotheses have finished and the
// best live one, scored at its current length, is worse than the `beam`-th best finished one.
// Finished hypotheses are ranked by log_prob / lp(length) with the GNMT length penalty
// lp(L) = ((5 + L) / 6)^alpha, where L counts the output tokens and the EOS. A hypothesis that
// reaches the maximum length (source length + max_extra) finishes there without EOS. With
// beam = 1 the search is exactly greedy search (tested).
#pragma once
#include <cstdint>
#include <vector>

#include "data/batcher.h"
#include "nn/transformer.h"

namespace attend::decode {

struct Hypothesis {
  std::vector<int32_t> tokens;  // without BOS and EOS
  double score = 0;             // log_prob / lp(length): what ranks hypotheses
  double log_prob = 0;          // sum of the tokens' log-probabilities (EOS included if emitted)
};

struct SearchOptions {
  int64_t beam = 4;        // hypotheses kept per sentence; 1 = greedy
  double alpha = 0.6;      // length penalty exponent (0: rank by total log-probability)
  int64_t n_best = 1;      // hypotheses returned per sentence, best first (<= beam)
  int64_t max_extra = 50;  // an output has at most source length + max_extra tokens
  int64_t min_length = 0;  // EOS is not allowed before this many output tokens
  // Sampling instead of search (beam must be 1): each token is drawn from
  // softmax(logits / temperature) restricted to the top_k most likely tokens (0: all) and to the
  // smallest set of most likely tokens whose probability reaches top_p. Deterministic for a
  // seed: sentence i of the input uses random stream i, whatever the batching.
  bool sample = false;
  double temperature = 1.0;
  int64_t top_k = 0;
  double top_p = 1.0;
  uint64_t seed = 0;

  /// Throws attend::Error naming the offending option.
  void validate() const;
};

/// GNMT length penalty ((5 + length) / 6)^alpha.
double length_penalty(int64_t length, double alpha);

/// Longest output allowed for a source of `src_len` tokens (learned positions cap it too).
int64_t max_output_length(const nn::Transformer& model, int64_t src_len, int64_t max_extra);
/// max_output_length of every row of a batch.
std::vector<int64_t> output_limits(const nn::Transformer& model, const data::Batch& batch,
                                   int64_t max_extra);

/// Beam search (or sampling, when options.sample) for every row of `batch`: the n_best
/// hypotheses of each row, best first. The model must be in eval mode.
std::vector<std::vector<Hypothesis>> search(const nn::Transformer& model, const data::Batch& batch,
                                            const SearchOptions& options);

/// `search` over examples (only .src is used) in length-sorted batches of about `max_tokens`
/// source tokens; results in input order.
std::vector<std::vector<Hypothesis>> search_all(const nn::Transformer& model,
                                                const std::vector<data::Example>& examples,
                                                int64_t max_tokens, const SearchOptions& options);

}  // namespace attend::decode
