// The generated numbers corpus: spelling rules checked on hand-written values, determinism
// and range of the generator.
#include <gtest/gtest.h>

#include <set>

#include "data/numbers.h"
#include "util.h"

namespace attend {
namespace {

using data::NumberLanguage;
using data::spell_number;

TEST(Numbers, EnglishSpelling) {
  const std::pair<int64_t, const char*> cases[] = {
      {0, "zero"}, {7, "seven"}, {13, "thirteen"}, {20, "twenty"}, {21, "twenty-one"},
      {40, "forty"}, {100, "one hundred"}, {115, "one hundred fifteen"},
      {999, "nine hundred ninety-nine"}, {1000, "one thousand"},
      {1234, "one thousand two hundred thirty-four"}, {20005, "twenty thousand five"},
      {999999, "nine hundred ninety-nine thousand nine hundred ninety-nine"}};
  for (const auto& [n, words] : cases) EXPECT_EQ(spell_number(n, NumberLanguage::kEnglish), words);
}

TEST(Numbers, GermanSpelling) {
  const std::pair<int64_t, const char*> cases[] = {
      {0, "null"}, {1, "eins"}, {16, "sechzehn"}, {17, "siebzehn"}, {21, "einundzwanzig"},
      {30, "dreißig"}, {101, "einhunderteins"}, {111, "einhundertelf"},
      {427, "vierhundertsiebenundzwanzig"}, {1000, "eintausend"}, {1001, "eintausendeins"},
      {21000, "einundzwanzigtausend"}, {1234, "eintausendzweihundertvierunddreißig"},
      {999999, "neunhundertneunundneunzigtausendneunhundertneunundneunzig"}};
  for (const auto& [n, words] : cases) EXPECT_EQ(spell_number(n, NumberLanguage::kGerman), words);
}

TEST(Numbers, OutOfRangeIsAnError) {
  EXPECT_TRUE(test::throws_with([] { spell_number(1000000, NumberLanguage::kEnglish); },
                                {"spell_number", "1000000"}));
  EXPECT_TRUE(test::throws_with([] { spell_number(-1, NumberLanguage::kGerman); }, {"-1"}));
  EXPECT_TRUE(test::throws_with(
      [] { data::generate_numbers(1, 5, 10, 5, NumberLanguage::kEnglish); }, {"[10, 5]"}));
}

TEST(Numbers, GeneratorIsDeterministicAndCoversTheRange) {
  const auto a = data::generate_numbers(7, 2000, 0, 99999, NumberLanguage::kEnglish);
  const auto b = data::generate_numbers(7, 2000, 0, 99999, NumberLanguage::kEnglish);
  const auto tail = data::generate_numbers(7, 10, 0, 99999, NumberLanguage::kEnglish, 1990);
  ASSERT_EQ(a.size(), 2000u);
  std::set<size_t> lengths;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].digits, b[i].digits);
    const int64_t n = std::stoll(a[i].digits);
    EXPECT_GE(n, 0);
    EXPECT_LE(n, 99999);
    EXPECT_EQ(a[i].words, spell_number(n, NumberLanguage::kEnglish));
    lengths.insert(a[i].digits.size());
  }
  for (size_t i = 0; i < tail.size(); ++i) EXPECT_EQ(tail[i].digits, a[1990 + i].digits);
  EXPECT_EQ(lengths, std::set<size_t>({1, 2, 3, 4, 5}));  // every digit count occurs
  EXPECT_NE(data::generate_numbers(8, 20, 0, 99999, NumberLanguage::kEnglish)[0].digits +
                data::generate_numbers(8, 20, 0, 99999, NumberLanguage::kEnglish)[1].digits,
            a[0].digits + a[1].digits);
}

}  // namespace
}  // namespace attend
