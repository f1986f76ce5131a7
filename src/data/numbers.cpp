// Number spelling rules (English without "and"; German compounds with "und", "ein"/"eins").
#include "data/numbers.h"

#include <algorithm>

#include "core/error.h"
#include "core/rng.h"

namespace attend::data {
namespace {

const char* const kEnOnes[] = {"zero",    "one",     "two",       "three",    "four",
                               "five",    "six",     "seven",     "eight",    "nine",
                               "ten",     "eleven",  "twelve",    "thirteen", "fourteen",
                               "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"};
const char* const kEnTens[] = {"", "", "twenty", "thirty", "forty",
                               "fifty", "sixty", "seventy", "eighty", "ninety"};

// German units as they appear inside compounds ("ein" for 1).
const char* const kDeOnes[] = {"null",     "ein",      "zwei",     "drei",       "vier",
                               "fünf",     "sechs",    "sieben",   "acht",       "neun",
                               "zehn",     "elf",      "zwölf",    "dreizehn",   "vierzehn",
                               "fünfzehn", "sechzehn", "siebzehn", "achtzehn",   "neunzehn"};
const char* const kDeTens[] = {"", "", "zwanzig", "dreißig", "vierzig",
                               "fünfzig", "sechzig", "siebzig", "achtzig", "neunzig"};

// 1..999 in English, words separated by spaces.
std::string english_below_1000(int64_t n) {
  std::string out;
  if (n >= 100) {
    out = std::string(kEnOnes[n / 100]) + " hundred";
    n %= 100;
    if (n == 0) return out;
    out += ' ';
  }
  if (n < 20) return out + kEnOnes[n];
  out += kEnTens[n / 10];
  if (n % 10) out += std::string("-") + kEnOnes[n % 10];
  return out;
}

// 1..999 in German as a compound; `final` marks the end of the whole number, where 1 is "eins".
std::string german_below_1000(int64_t n, bool final) {
  std::string out;
  if (n >= 100) {
    out = std::string(kDeOnes[n / 100]) + "hundert";
    n %= 100;
    if (n == 0) return out;
  }
  if (n == 1) return out + (final ? "eins" : "ein");
  if (n < 20) return out + kDeOnes[n];
  if (n % 10) out += std::string(kDeOnes[n % 10]) + "und";
  return out + kDeTens[n / 10];
}

}  // namespace

std::string spell_number(int64_t n, NumberLanguage language) {
  ATTEND_CHECK(n >= 0 && n <= 999999, "spell_number: {} is outside [0, 999999]", n);
  if (language == NumberLanguage::kEnglish) {
    if (n == 0) return kEnOnes[0];
    std::string out;
    if (n >= 1000) {
      out = english_below_1000(n / 1000) + " thousand";
      if (n % 1000 == 0) return out;
      out += ' ';
    }
    return out + english_below_1000(n % 1000);
  }
  if (n == 0) return kDeOnes[0];
  std::string out;
  if (n >= 1000) {
    out = german_below_1000(n / 1000, false) + "tausend";
    if (n % 1000 == 0) return out;
  }
  return out + german_below_1000(n % 1000, true);
}

std::vector<NumberPair> generate_numbers(uint64_t seed, int64_t count, int64_t min, int64_t max,
                                         NumberLanguage language, int64_t first_index) {
  ATTEND_CHECK(0 <= min && min <= max && max <= 999999,
               "generate_numbers: range [{}, {}] must lie within [0, 999999]", min, max);
  ATTEND_CHECK(count >= 0, "generate_numbers: count must be >= 0, got {}", count);
  std::vector<NumberPair> out;
  out.reserve(static_cast<size_t>(count));
  const int64_t digits_lo = static_cast<int64_t>(std::to_string(min).size());
  const int64_t digits_hi = static_cast<int64_t>(std::to_string(max).size());
  for (int64_t i = 0; i < count; ++i) {
    const auto r = philox4x32(seed, 0x6e756d, static_cast<uint64_t>(first_index + i));
    // Draw the digit count first, then the value, so short and long numbers are both common.
    const uint64_t wide = (static_cast<uint64_t>(r[0]) << 32) | r[1];
    const int64_t d =
        digits_lo + static_cast<int64_t>(r[2] % static_cast<uint32_t>(digits_hi - digits_lo + 1));
    int64_t p = 1;  // 10^(d-1)
    for (int64_t k = 1; k < d; ++k) p *= 10;
    const int64_t lo = std::max(min, d == 1 ? int64_t{0} : p), hi = std::min(max, p * 10 - 1);
    const int64_t n = lo + static_cast<int64_t>(wide % static_cast<uint64_t>(hi - lo + 1));
    out.push_back({std::to_string(n), spell_number(n, language)});
  }
  return out;
}

}  // namespace attend::data
