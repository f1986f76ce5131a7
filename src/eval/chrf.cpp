// Corpus chrF (see chrf.h).
#include "eval/chrf.h"

#include <algorithm>
#include <cstdio>
#include <unordered_map>

#include "core/error.h"
#include "core/unicode.h"

namespace attend::eval {
namespace {

using Stats = std::vector<std::array<int64_t, 3>>;
using Grams = std::vector<std::unordered_map<std::u32string, int64_t>>;

Grams char_ngrams(const std::string& line, const ChrfOptions& o) {
  std::u32string text;
  for (char32_t c : utf8_decode(o.lowercase ? lowercase(line) : line))
    if (o.whitespace || !is_space(c)) text.push_back(c);
  Grams g(static_cast<size_t>(o.char_order));
  for (size_t n = 1; n <= g.size(); ++n)
    for (size_t i = 0; i + n <= text.size(); ++i) ++g[n - 1][text.substr(i, n)];
  return g;
}

Stats match(const Grams& hyp, const Grams& ref) {
  Stats s(hyp.size());
  for (size_t n = 0; n < hyp.size(); ++n) {
    for (const auto& [g, c] : hyp[n]) {
      // A reference with no n-grams of this order counts none of the hypothesis's either, as
      // sacreBLEU does (so an empty reference line adds nothing to the corpus statistics).
      if (!ref[n].empty()) s[n][0] += c;
      if (const auto it = ref[n].find(g); it != ref[n].end()) s[n][2] += std::min(c, it->second);
    }
    for (const auto& [g, c] : ref[n]) s[n][1] += c;
  }
  return s;
}

double f_score(const Stats& s, const ChrfOptions& o) {
  constexpr double eps = 1e-16;
  const double b2 = o.beta * o.beta;
  double sum_f = 0, avg_p = 0, avg_r = 0;
  int effective = 0;
  for (const auto& [hyp, ref, m] : s) {
    const double p = hyp > 0 ? static_cast<double>(m) / static_cast<double>(hyp) : eps;
    const double r = ref > 0 ? static_cast<double>(m) / static_cast<double>(ref) : eps;
    const double denom = b2 * p + r;
    sum_f += denom > 0 ? (1 + b2) * p * r / denom : eps;
    if (hyp > 0 && ref > 0) ++effective;
    avg_p += p;
    avg_r += r;
  }
  if (o.eps_smoothing) return 100 * sum_f / static_cast<double>(s.size());
  if (effective == 0) return 0;
  avg_p /= effective;
  avg_r /= effective;
  if (avg_p + avg_r == 0) return 0;
  return 100 * (1 + b2) * avg_p * avg_r / (b2 * avg_p + avg_r);
}

}  // namespace

std::string ChrfScore::str() const {
  char buf[64];
  std::snprintf(buf, sizeof buf, "chrF2 = %.2f", score);
  return buf;
}

ChrfScore corpus_chrf(const std::vector<std::string>& hyps,
                      const std::vector<std::vector<std::string>>& refs, const ChrfOptions& o) {
  ATTEND_CHECK(!refs.empty(), "chrf: no reference set given");
  ATTEND_CHECK(o.char_order >= 1, "chrf: char_order must be >= 1, got {}", o.char_order);
  ATTEND_CHECK(o.beta > 0, "chrf: beta must be > 0, got {}", o.beta);
  for (size_t r = 0; r < refs.size(); ++r)
    ATTEND_CHECK(refs[r].size() == hyps.size(),
                 "chrf: the hypotheses have {} lines but reference set {} has {} lines",
                 hyps.size(), r + 1, refs[r].size());
  ChrfScore out;
  out.stats.assign(static_cast<size_t>(o.char_order), {0, 0, 0});
  for (size_t i = 0; i < hyps.size(); ++i) {
    const Grams h = char_ngrams(hyps[i], o);
    Stats best;
    double best_f = -1;
    for (const auto& set : refs) {
      Stats s = match(h, char_ngrams(set[i], o));
      const double f = f_score(s, o);
      if (f > best_f) best_f = f, best = std::move(s);
    }
    for (size_t n = 0; n < best.size(); ++n)
      for (int k = 0; k < 3; ++k) out.stats[n][k] += best[n][k];
  }
  out.score = f_score(out.stats, o);
  return out;
}

}  // namespace attend::eval
