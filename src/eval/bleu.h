// Corpus BLEU computed as sacreBLEU computes it: 13a tokenization by default (or intl, char,
// none, each as sacreBLEU's tokenizer of that name), n-grams
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
/// mteval-v14's international tokenization: punctuation (Unicode P) split off unless between
/// digits (Unicode N), symbols (Unicode S) always; sacreBLEU's `intl`.
std::string tokenize_intl(const std::string& line);
/// One token per character, whitespace dropped; sacreBLEU's `char`.
std::string tokenize_char(const std::string& line);

/// The tokenization schemes: "13a", "intl", "char" and "none" (split on whitespace only).
inline constexpr const char* kBleuTokenizers = "13a, intl, char, none";
/// line tokenized by scheme (one of kBleuTokenizers; anything else is an error naming them).
std::string tokenize(const std::string& line, const std::string& scheme);

struct BleuOptions {
  std::string tokenize = "13a";  // 13a | intl | char | none
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
