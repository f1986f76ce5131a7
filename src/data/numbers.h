// A generated parallel corpus for the embedded default task: numbers written in digits on the
// source side and spelled out in English or German words on the target side, deterministic
// from a seed (e.g. "427" -> "four hundred twenty-seven" / "vierhundertsiebenundzwanzig").
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace attend::data {

enum class NumberLanguage { kEnglish, kGerman };

/// n in [0, 999,999] spelled out: English "one thousand two hundred thirty-four" (no "and"),
/// German as one word "eintausendzweihundertvierunddreißig" (UTF-8). Throws attend::Error
/// outside the range.
std::string spell_number(int64_t n, NumberLanguage language);

struct NumberPair {
  std::string digits;  // "1234"
  std::string words;   // spelled out
};

/// `count` pairs with numbers drawn from [min, max] by Philox(seed): the i-th pair depends only
/// on (seed, i), so train/dev/test splits taken with different seeds or offsets are stable.
std::vector<NumberPair> generate_numbers(uint64_t seed, int64_t count, int64_t min, int64_t max,
                                         NumberLanguage language, int64_t first_index = 0);

}  // namespace attend::data
