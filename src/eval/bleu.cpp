// Corpus BLEU (see bleu.h).
#include "eval/bleu.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include "core/error.h"
#include "core/unicode.h"

namespace attend::eval {
namespace {

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size()))
    s.replace(p, from.size(), to);
}

// Words between Unicode whitespace, as Python's str.split().
std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::u32string word;
  for (char32_t c : utf8_decode(s)) {
    if (!is_space(c)) {
      word.push_back(c);
    } else if (!word.empty()) {
      out.push_back(utf8_encode(word));
      word.clear();
    }
  }
  if (!word.empty()) out.push_back(utf8_encode(word));
  return out;
}

using Counts = std::map<std::vector<std::string>, int64_t>;

Counts ngrams(const std::vector<std::string>& w, size_t n) {
  Counts c;
  for (size_t i = 0; i + n <= w.size(); ++i) ++c[std::vector<std::string>(w.begin() + i, w.begin() + i + n)];
  return c;
}

}  // namespace

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// The characters mteval-v13a separates everywhere: { | } ~ [ \ ] ^ _ ` space ! " # $ % &
// ( ) * + : ; < = > ? @ /
bool separated(char c) {
  const unsigned char u = static_cast<unsigned char>(c);
  return (u >= 0x7B && u <= 0x7E) || (u >= 0x5B && u <= 0x60) || (u >= 0x20 && u <= 0x26) ||
         (u >= 0x28 && u <= 0x2B) || (u >= 0x3A && u <= 0x40) || u == 0x2F;
}

// One rewrite pass with the leftmost, non-overlapping match semantics of a regex substitution
// over a two-character pattern (first, second) -> emit(first, second, out). Str is std::string
// (bytes) or std::u32string (code points).
template <typename Str, typename Match, typename Emit>
Str pass(const Str& s, Match match, Emit emit) {
  Str out;
  out.reserve(s.size() + s.size() / 4);
  size_t i = 0;
  while (i < s.size()) {
    if (i + 1 < s.size() && match(s[i], s[i + 1])) {
      emit(s[i], s[i + 1], out);
      i += 2;
    } else {
      out.push_back(s[i++]);
    }
  }
  return out;
}

std::string join_words(const std::string& spaced) {
  std::string out;
  for (const auto& w : split(spaced)) out += (out.empty() ? "" : " ") + w;
  return out;
}

}  // namespace

// The four substitutions of mteval-v13a (as in sacreBLEU's tokenizer_13a), applied in order:
//   ([{-~[-` -&(-+:-@/])  -> " \1 "     ([^0-9])([.,]) -> "\1 \2 "
//   ([.,])([^0-9])        -> " \1 \2"  ([0-9])(-)     -> "\1 \2 "
// Bytes stand in for code points: the patterns only test ASCII characters, and a multibyte
// character next to a match is passed through unchanged either way.
std::string tokenize_13a(const std::string& input) {
  std::string line = input;
  replace_all(line, "<skipped>", "");
  replace_all(line, "-\n", "");
  replace_all(line, "\n", " ");
  if (line.find('&') != std::string::npos) {
    replace_all(line, "&quot;", "\"");
    replace_all(line, "&amp;", "&");
    replace_all(line, "&lt;", "<");
    replace_all(line, "&gt;", ">");
  }
  std::string spaced = " ";
  for (char c : line) {
    if (separated(c)) {
      spaced += ' ';
      spaced += c;
      spaced += ' ';
    } else {
      spaced += c;
    }
  }
  spaced += ' ';
  const auto period = [](char c) { return c == '.' || c == ','; };
  spaced = pass(spaced, [&](char a, char b) { return !is_digit(a) && period(b); },
                [](char a, char b, std::string& o) { o += a; o += ' '; o += b; o += ' '; });
  spaced = pass(spaced, [&](char a, char b) { return period(a) && !is_digit(b); },
                [](char a, char b, std::string& o) { o += ' '; o += a; o += ' '; o += b; });
  spaced = pass(spaced, [](char a, char b) { return is_digit(a) && b == '-'; },
                [](char a, char b, std::string& o) { o += a; o += ' '; o += b; o += ' '; });
  return join_words(spaced);
}

// mteval-v14's international tokenization (sacreBLEU's tokenizer_intl), over code points:
//   (\P{N})(\p{P}) -> "\1 \2 "   (\p{P})(\P{N}) -> " \1 \2"   (\p{S}) -> " \1 "
// so punctuation is split off unless a digit stands on both sides, and symbols always.
std::string tokenize_intl(const std::string& line) {
  std::u32string s = utf8_decode(line);
  s = pass(s, [](char32_t a, char32_t b) { return !is_number(a) && is_punctuation(b); },
           [](char32_t a, char32_t b, std::u32string& o) { o += a; o += U' '; o += b; o += U' '; });
  s = pass(s, [](char32_t a, char32_t b) { return is_punctuation(a) && !is_number(b); },
           [](char32_t a, char32_t b, std::u32string& o) { o += U' '; o += a; o += U' '; o += b; });
  std::u32string spaced;
  spaced.reserve(s.size() + s.size() / 4);
  for (char32_t c : s) {
    if (is_symbol(c)) {
      spaced += U' ';
      spaced += c;
      spaced += U' ';
    } else {
      spaced += c;
    }
  }
  return join_words(utf8_encode(spaced));
}

// Every character its own token (sacreBLEU's tokenizer_char); whitespace separates only.
std::string tokenize_char(const std::string& line) {
  std::u32string out;
  for (char32_t c : utf8_decode(line)) {
    if (is_space(c)) continue;
    if (!out.empty()) out += U' ';
    out += c;
  }
  return utf8_encode(out);
}

std::string tokenize(const std::string& line, const std::string& scheme) {
  if (scheme == "13a") return tokenize_13a(line);
  if (scheme == "intl") return tokenize_intl(line);
  if (scheme == "char") return tokenize_char(line);
  ATTEND_CHECK(scheme == "none", "bleu: tokenize must be one of {}, got '{}'", kBleuTokenizers,
               scheme);
  return line;
}

std::string BleuScore::str() const {
  char buf[256];
  std::snprintf(buf, sizeof(buf),
                "BLEU = %.2f %.1f/%.1f/%.1f/%.1f (BP = %.3f ratio = %.3f hyp_len = %lld ref_len = %lld)",
                score, precisions[0], precisions[1], precisions[2], precisions[3], brevity_penalty,
                ref_len ? static_cast<double>(sys_len) / static_cast<double>(ref_len) : 0.0,
                static_cast<long long>(sys_len), static_cast<long long>(ref_len));
  return buf;
}

BleuScore corpus_bleu(const std::vector<std::string>& hyps,
                      const std::vector<std::vector<std::string>>& refs, const BleuOptions& o) {
  ATTEND_CHECK(!refs.empty(), "bleu: no reference set given");
  tokenize("", o.tokenize);  // checks the scheme's name before any work
  for (size_t r = 0; r < refs.size(); ++r)
    ATTEND_CHECK(refs[r].size() == hyps.size(),
                 "bleu: the hypotheses have {} lines but reference set {} has {} lines",
                 hyps.size(), r + 1, refs[r].size());
  auto prep = [&](const std::string& s) {
    std::string t = o.lowercase ? lowercase(s) : s;
    return split(tokenize(t, o.tokenize));
  };
  BleuScore b;
  for (size_t i = 0; i < hyps.size(); ++i) {
    const auto h = prep(hyps[i]);
    std::vector<std::vector<std::string>> rs;
    for (const auto& set : refs) rs.push_back(prep(set[i]));
    // Closest reference length; ties go to the shorter one.
    int64_t best = -1;
    for (const auto& r : rs) {
      const int64_t len = static_cast<int64_t>(r.size()), hl = static_cast<int64_t>(h.size());
      if (best < 0 || std::abs(len - hl) < std::abs(best - hl) ||
          (std::abs(len - hl) == std::abs(best - hl) && len < best))
        best = len;
    }
    b.sys_len += static_cast<int64_t>(h.size());
    b.ref_len += best;
    for (size_t n = 1; n <= 4; ++n) {
      Counts maxref;
      for (const auto& r : rs)
        for (const auto& [g, c] : ngrams(r, n)) maxref[g] = std::max(maxref[g], c);
      for (const auto& [g, c] : ngrams(h, n)) {
        const auto it = maxref.find(g);
        b.correct[n - 1] += std::min(c, it == maxref.end() ? 0 : it->second);
      }
      b.total[n - 1] += std::max<int64_t>(0, static_cast<int64_t>(h.size()) - static_cast<int64_t>(n) + 1);
    }
  }
  double smooth = 1.0, log_sum = 0.0;
  for (int n = 0; n < 4; ++n) {
    if (b.total[n] == 0) {
      b.precisions[n] = 0;
    } else if (b.correct[n] == 0) {
      smooth *= 2;  // sacreBLEU's "exp" smoothing
      b.precisions[n] = 100.0 / (smooth * static_cast<double>(b.total[n]));
    } else {
      b.precisions[n] = 100.0 * static_cast<double>(b.correct[n]) / static_cast<double>(b.total[n]);
    }
  }
  if (b.sys_len == 0) return b;  // no output: BLEU 0
  b.brevity_penalty = b.sys_len < b.ref_len
                          ? std::exp(1.0 - static_cast<double>(b.ref_len) / static_cast<double>(b.sys_len))
                          : 1.0;
  for (int n = 0; n < 4; ++n) {
    if (b.precisions[n] <= 0) return b;  // an order with no n-grams at all: BLEU 0
    log_sum += std::log(b.precisions[n] / 100.0);
  }
  b.score = 100.0 * b.brevity_penalty * std::exp(log_sum / 4.0);
  return b;
}

}  // namespace attend::eval
