// Greedy decoding, and its uncached form: the oracle chain for incremental decoding is
// uncached greedy (re-runs the decoder over the whole prefix) -> the session's cached greedy
// (beam 1) -> beam search (tests/decode).
#pragma once
#include <cstdint>
#include <vector>

#include "nn/transformer.h"

namespace attend::decode {

struct GreedyOptions {
  int64_t max_extra = 50;  // an output has at most source length + max_extra tokens
};

/// The ids of each source's greedy translation, without BOS/EOS: a Session with beam 1.
std::vector<std::vector<int32_t>> greedy(const nn::EncoderDecoder& model,
                                         const std::vector<std::vector<int32_t>>& sources,
                                         const GreedyOptions& options = {});

/// The same search without a cache: every step runs the full decoder over the prefix.
std::vector<std::vector<int32_t>> greedy_reference(const nn::EncoderDecoder& model,
                                                   const std::vector<std::vector<int32_t>>& sources,
                                                   const GreedyOptions& options = {});

}  // namespace attend::decode
