// BLEU: hand-computed corpus scores and the 13a tokenizer. The expected tokenizations were
// produced by running the mteval-v13a regular expressions (as sacreBLEU's tokenizer_13a
// defines them) with Python's re module, an implementation independent of std::regex.
#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "eval/bleu.h"

namespace attend {
namespace {

TEST(Bleu, Tokenize13a) {
  EXPECT_EQ(eval::tokenize_13a("Hello, world."), "Hello , world .");
  EXPECT_EQ(eval::tokenize_13a("It costs $3.50-4.00!"), "It costs $ 3.50 - 4.00 !");
  EXPECT_EQ(eval::tokenize_13a("A man's dog (brown) ran... fast?"),
            "A man's dog ( brown ) ran . . . fast ?");
  EXPECT_EQ(eval::tokenize_13a("x&amp;y &quot;q&quot; 1,000.5 well-known 2-3"),
            "x & y \" q \" 1,000.5 well-known 2 - 3");
  EXPECT_EQ(eval::tokenize_13a("Dr. Smith's e-mail: a@b.com/c"),
            "Dr . Smith's e-mail : a @ b . com / c");
}

// Expected outputs printed by sacreBLEU 2.6.0's tokenizer_intl and tokenizer_char (then split on
// whitespace, as BLEU does); tests/python/test_score.py compares whole corpora.
TEST(Bleu, TokenizeIntlAndChar) {
  EXPECT_EQ(eval::tokenize_intl("Hello, world."), "Hello , world .");
  EXPECT_EQ(eval::tokenize_intl("It costs $3.50-4.00!"), "It costs $ 3.50-4.00!");
  EXPECT_EQ(eval::tokenize_intl("1,000.5 in 2024."), "1,000.5 in 2024.");
  EXPECT_EQ(eval::tokenize_intl("\u00abÇa va?\u00bb \u2014 oui\u2026 5\u20ac"),
            "\u00ab Ça va ? \u00bb \u2014 oui \u2026 5 \u20ac");
  EXPECT_EQ(eval::tokenize_intl("日本語、テスト。"), "日本語 、 テスト 。");
  EXPECT_EQ(eval::tokenize_intl("a\u00a0b  c"), "a b c");
  EXPECT_EQ(eval::tokenize_char("Hello, w\u00f6rld."), "H e l l o , w \u00f6 r l d .");
  EXPECT_EQ(eval::tokenize_char("a\u00a0b  c "), "a b c");
  EXPECT_EQ(eval::tokenize("a.b", "none"), "a.b");
  EXPECT_EQ(eval::tokenize("a.", "intl"), "a .");
  EXPECT_THROW(eval::tokenize("a", "zh"), Error);
}

TEST(Bleu, HandComputedSentence) {
  // p1 = 5/6, p2 = 3/5, p3 = 1/4, p4 = 0/3 -> smoothed 1/(2*3); BP = 1.
  const auto b = eval::corpus_bleu({"the cat sat on the mat"}, {{"the cat is on the mat"}},
                                   {"none", false});
  EXPECT_EQ(b.correct, (std::array<int64_t, 4>{5, 3, 1, 0}));
  EXPECT_EQ(b.total, (std::array<int64_t, 4>{6, 5, 4, 3}));
  const double want = 100.0 * std::exp((std::log(5.0 / 6) + std::log(3.0 / 5) + std::log(1.0 / 4) +
                                        std::log(1.0 / 6)) / 4);
  EXPECT_NEAR(b.score, want, 1e-9);
  EXPECT_NEAR(b.score, 37.9918, 1e-4);
}

TEST(Bleu, BrevityPenaltyClippingAndMultipleReferences) {
  const auto short_hyp = eval::corpus_bleu({"the cat sat on"}, {{"the cat sat on the mat"}}, {"none", false});
  EXPECT_NEAR(short_hyp.score, 100.0 * std::exp(-0.5), 1e-9);
  // "the the the" matches "the" at most twice (the reference count).
  const auto clip = eval::corpus_bleu({"the the the"}, {{"the cat the"}}, {"none", false});
  EXPECT_EQ(clip.correct[0], 2);
  // The second reference fits better; the closest reference length (5, not 7) is used.
  const auto multi = eval::corpus_bleu({"a b c d e"}, {{"x y z w v u t"}, {"a b c d e"}}, {"none", false});
  EXPECT_NEAR(multi.score, 100.0, 1e-9);
  EXPECT_EQ(multi.ref_len, 5);
  EXPECT_NEAR(eval::corpus_bleu({"Hello, World!"}, {{"hello , world !"}}, {"13a", true}).score, 100.0, 1e-9);
  EXPECT_LT(eval::corpus_bleu({"Hello, World!"}, {{"hello , world !"}}, {"13a", false}).score, 100.0);
  EXPECT_EQ(eval::corpus_bleu({""}, {{"something"}}).score, 0.0);
}

TEST(Bleu, LineCountMismatchNamesBothCounts) {
  try {
    eval::corpus_bleu({"a", "b"}, {{"a", "b", "c"}});
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("2 lines"), std::string::npos) << m;
    EXPECT_NE(m.find("3 lines"), std::string::npos) << m;
  }
}

}  // namespace
}  // namespace attend
