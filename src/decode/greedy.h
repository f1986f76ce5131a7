// Greedy decoding for a batch of source sentences, incremental: the decoder's self-attention
// keys/values are cached per layer and step, the encoder-attention keys/values computed once,
// and finished sentences leave the batch. The plain form of the search in search.h (beam 1
// equals it, tested), kept as the oracle chain: uncached greedy -> cached greedy -> beam.
#pragma once
#include <cstdint>
#include <vector>

#include "data/batcher.h"
#include "nn/transformer.h"

namespace attend::decode {

struct GreedyOptions {
  int64_t max_extra = 50;  // an output has at most source length + max_extra tokens
};

/// Translates every row of `batch` (src, src_lengths); returns the ids of each row without
/// BOS/EOS, in row order. The model must be in eval mode.
std::vector<std::vector<int32_t>> greedy(const nn::Transformer& model, const data::Batch& batch,
                                         const GreedyOptions& options = {});

/// The same search without a cache (re-runs the decoder over the whole prefix each step): the
/// oracle for the cached path in tests.
std::vector<std::vector<int32_t>> greedy_reference(const nn::Transformer& model,
                                                   const data::Batch& batch,
                                                   const GreedyOptions& options = {});

}  // namespace attend::decode
