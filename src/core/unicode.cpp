// Unicode for text handling (see unicode.h).
#include "core/unicode.h"

#include <algorithm>
#include <iterator>

namespace attend {
namespace {

struct CodePointRange {
  char32_t first, last;
};
struct CodePointMap {
  char32_t from, to;
};
struct Decomposition {
  char32_t code;
  unsigned offset, length;  // into kDecomposed
};
#include "core/unicode_tables.inc"

template <size_t N>
bool in(const CodePointRange (&table)[N], char32_t c) {
  const auto* it = std::upper_bound(
      table, table + N, c, [](char32_t v, const CodePointRange& r) { return v < r.first; });
  return it != table && c <= (it - 1)->last;
}

}  // namespace

std::u32string utf8_decode(const std::string& s) {
  std::u32string out;
  out.reserve(s.size());
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  for (size_t i = 0; i < n;) {
    const unsigned char c = p[i];
    int len = 0;
    char32_t cp = 0, min = 0;
    if (c < 0x80)
      len = 1, cp = c;
    else if ((c & 0xE0) == 0xC0)
      len = 2, cp = c & 0x1F, min = 0x80;
    else if ((c & 0xF0) == 0xE0)
      len = 3, cp = c & 0x0F, min = 0x800;
    else if ((c & 0xF8) == 0xF0)
      len = 4, cp = c & 0x07, min = 0x10000;
    bool ok = len > 0 && i + static_cast<size_t>(len) <= n;
    for (int k = 1; ok && k < len; ++k) {
      ok = (p[i + k] & 0xC0) == 0x80;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    if (ok && len > 1) ok = cp >= min && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
    if (!ok) {
      out.push_back(0xFFFD);
      ++i;
      continue;
    }
    out.push_back(cp);
    i += static_cast<size_t>(len);
  }
  return out;
}

std::string utf8_encode(const std::u32string& s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s) {
    if (c < 0x80) {
      out += static_cast<char>(c);
    } else if (c < 0x800) {
      out += static_cast<char>(0xC0 | (c >> 6));
      out += static_cast<char>(0x80 | (c & 0x3F));
    } else if (c < 0x10000) {
      out += static_cast<char>(0xE0 | (c >> 12));
      out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (c & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (c >> 18));
      out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (c & 0x3F));
    }
  }
  return out;
}

bool is_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
         c == 0x205F || c == 0x3000;
}

std::string python_strip(const std::string& s, bool left, bool right) {
  const std::u32string u = utf8_decode(s);
  size_t b = 0, e = u.size();
  while (left && b < e && is_space(u[b])) ++b;
  while (right && e > b && is_space(u[e - 1])) --e;
  return utf8_encode(u.substr(b, e - b));
}

bool is_white_space(char32_t c) { return is_space(c) && !(c >= 0x1C && c <= 0x1F); }
bool is_letter(char32_t c) { return in(kLetter, c); }
bool is_punctuation(char32_t c) { return in(kPunctuation, c); }
bool is_number(char32_t c) { return in(kNumber, c); }
bool is_symbol(char32_t c) { return in(kSymbol, c); }
bool is_other(char32_t c) { return in(kOther, c); }
bool is_space_separator(char32_t c) { return in(kSpaceSeparator, c); }
bool is_nonspacing_mark(char32_t c) { return in(kNonspacingMark, c); }

char32_t to_lower(char32_t c) {
  if (c < 0x80) return c >= 'A' && c <= 'Z' ? c + 32 : c;
  if (c == 0x130) return 'i';  // İ: str.lower() adds U+0307 (lowercase() does), not a table entry
  const auto* end = std::end(kLowercase);
  const auto* it = std::lower_bound(std::begin(kLowercase), end, c,
                                    [](const CodePointMap& m, char32_t v) { return m.from < v; });
  return it != end && it->from == c ? it->to : c;
}

std::u32string lowercase(const std::u32string& s) {
  std::u32string out;
  out.reserve(s.size());
  for (char32_t c : s) {
    out.push_back(to_lower(c));
    if (c == 0x130) out.push_back(0x307);  // İ: str.lower() gives i + combining dot above
  }
  return out;
}

std::string lowercase(const std::string& s) {
  bool ascii = true;
  for (char ch : s) ascii = ascii && static_cast<unsigned char>(ch) < 0x80;
  if (!ascii) return utf8_encode(lowercase(utf8_decode(s)));
  std::string out = s;
  for (char& ch : out)
    if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch + 32);
  return out;
}

std::u32string strip_accents(const std::u32string& s) {
  std::u32string out;
  out.reserve(s.size());
  const auto keep = [&](char32_t c) {
    if (!is_nonspacing_mark(c)) out.push_back(c);
  };
  for (char32_t c : s) {
    if (c < 0xC0) {
      out.push_back(c);
    } else if (c >= 0xAC00 && c <= 0xD7A3) {  // Hangul syllable: L V (T) conjoining jamo
      const char32_t i = c - 0xAC00;
      out.push_back(0x1100 + i / (21 * 28));
      out.push_back(0x1161 + (i % (21 * 28)) / 28);
      if (i % 28 != 0) out.push_back(0x11A7 + i % 28);
    } else {
      const auto* end = std::end(kDecompositions);
      const auto* it =
          std::lower_bound(std::begin(kDecompositions), end, c,
                           [](const Decomposition& d, char32_t v) { return d.code < v; });
      if (it != end && it->code == c) {
        for (unsigned k = 0; k < it->length; ++k) keep(kDecomposed[it->offset + k]);
      } else {
        keep(c);
      }
    }
  }
  return out;
}

}  // namespace attend
