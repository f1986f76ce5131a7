// Corpus chrF as sacreBLEU (2.x) computes it by default: character n-grams of orders 1..6 over
// the text with whitespace removed, per-order precision and recall summed over the corpus,
// averaged over the orders that occur, and combined into F-beta with beta = 2. With several
// references, each sentence counts against the reference with its best sentence-level score.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace attend::eval {

struct ChrfOptions {
  int char_order = 6;
  double beta = 2;
  bool lowercase = false;
  bool whitespace = false;     // keep whitespace inside the character n-grams
  bool eps_smoothing = false;  // sacreBLEU's eps_smoothing: average F over all orders
};

struct ChrfScore {
  double score = 0;  // 0..100
  /// Per order n: hypothesis n-grams, reference n-grams, matches (summed over the corpus).
  std::vector<std::array<int64_t, 3>> stats;
  std::string str() const;  // "chrF2 = 61.30"
};

/// hyps[i] is scored against refs[r][i] for every reference set r (equal line counts required).
ChrfScore corpus_chrf(const std::vector<std::string>& hyps,
                      const std::vector<std::vector<std::string>>& refs,
                      const ChrfOptions& options = {});

}  // namespace attend::eval
