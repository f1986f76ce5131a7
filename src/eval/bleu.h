// Corpus BLEU computed as sacreBLEU computes it by default: 13a tokenization (or none), n-grams
// up to 4 clipped by the maximum count over the references, exponential smoothing of zero
// n-gram precisions, and the brevity penalty with the closest reference length per sentence.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace attend::eval {

/// The mteval-v13a tokenization sacreBLEU uses by default.
std::string tokenize_13a(const std::string& line);

struct BleuOptions {
  std::string tokenize = "13a";  // 13a | none
  bool lowercase = false;
};

struct BleuScore {
  double score = 0;                  // 0..100
  std::array<double, 4> precisions{};  // percent
  double brevity_penalty = 0;
  int64_t sys_len = 0, ref_len = 0;
  std::array<int64_t, 4> correct{}, total{};
  /// "BLEU = 35.12 66.7/41.2/28.0/19.5 (BP = 1.000 ratio = 1.012 hyp_len = 1234 ref_len = 1219)"
  std::string str() const;
};

/// hyps[i] is scored against refs[r][i] for every reference set r; every reference set must
/// have as many lines as hyps (an error names both counts).
BleuScore corpus_bleu(const std::vector<std::string>& hyps,
                      const std::vector<std::vector<std::string>>& refs,
                      const BleuOptions& options = {});

}  // namespace attend::eval
