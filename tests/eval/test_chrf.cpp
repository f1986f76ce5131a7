// chrF and sacreBLEU-computed reference values. The expected scores marked "sacreBLEU" come from
// sacreBLEU's own test suite (github.com/mjpost/sacrebleu, test/test_bleu.py and
// test/test_chrf.py, sacreBLEU 2.x), where sacreBLEU computed them on the inputs repeated here;
// sacreBLEU itself is not packaged for this machine, so they were transcribed, not regenerated.
#include <gtest/gtest.h>

#include "core/error.h"
#include "eval/bleu.h"
#include "eval/chrf.h"
#include "core/unicode.h"

namespace attend {
namespace {

double chrf(const std::string& hyp, const std::string& ref, eval::ChrfOptions o) {
  return eval::corpus_chrf({hyp}, {{ref}}, o).score;
}

TEST(Chrf, HandComputed) {
  const eval::ChrfOptions def;  // beta 2, average over the orders that occur
  EXPECT_NEAR(chrf("a b c", "abc", def), 100.0, 1e-9);  // whitespace does not count
  // Unigrams: hyp {a: 2}, ref {a, b}: P = R = 1/2; bigrams: no match, P = R = 0 -> mean 1/4.
  EXPECT_NEAR(chrf("aa", "ab", def), 25.0, 1e-9);
  // Corpus statistics add up before the score: unigrams 1 of 2 match, nothing else occurs.
  EXPECT_NEAR(eval::corpus_chrf({"a", "b"}, {{"a", "c"}}, def).score, 50.0, 1e-9);
  // F-beta: P = 1 (3 of 3 unigrams), R = 3/6; bigrams P = 2/2, R = 2/5; trigram P = 1, R = 1/4.
  const double b2 = 4;
  auto f = [&](double p, double r) { return (1 + b2) * p * r / (b2 * p + r); };
  const double p = 1.0, r = (3.0 / 6 + 2.0 / 5 + 1.0 / 4) / 3;
  EXPECT_NEAR(chrf("abc", "abcdef", def), 100 * f(p, r), 1e-9);
  EXPECT_EQ(chrf("", "abc", def), 0.0);
}

TEST(Chrf, SacrebleuValuesEpsSmoothingBeta3) {
  eval::ChrfOptions o;
  o.beta = 3;
  o.eps_smoothing = true;
  struct Case { const char* hyp; const char* ref; double want; };
  const Case cases[] = {
      {"abcdefg", "hijklmnop", 0.0}, {"a", "b", 0.0}, {"", "b", 0.0}, {"", "reference", 0.0},
      {"aa", "ab", 8.3333}, {"a", "a", 16.6667}, {"a b c", "a b c", 50.0}, {"a b c", "abc", 50.0},
      {" risk assessment must be made of those who are qualified and expertise in the sector - these are the scientists .",
       "risk assessment has to be undertaken by those who are qualified and expert in that area - that is the scientists .",
       63.361730},
      {" Die    Beziehung zwischen  Obama und Netanjahu ist nicht gerade  freundlich. ",
       "Das Verhältnis zwischen Obama und Netanyahu ist nicht gerade freundschaftlich.", 64.1302698},
      {"Niemand hat die Absicht, eine Mauer zu errichten", "Niemand hat die Absicht, eine Mauer zu errichten", 100.0},
  };
  for (const auto& c : cases) EXPECT_NEAR(chrf(c.hyp, c.ref, o), c.want, 1e-4) << c.hyp;
  EXPECT_NEAR(eval::corpus_chrf({"a", "b"}, {{"a", "c"}}, o).score, 8.3333, 1e-4);
}

TEST(Chrf, SacrebleuValuesEffectiveOrderBeta3) {
  eval::ChrfOptions o;
  o.beta = 3;
  EXPECT_NEAR(chrf("a", "a", o), 100.0, 1e-4);
  EXPECT_NEAR(chrf("", "reference", o), 0.0, 1e-4);
  EXPECT_NEAR(chrf("a b c", "a b c", o), 100.0, 1e-4);
  EXPECT_NEAR(chrf("a b c", "abc", o), 100.0, 1e-4);
  EXPECT_NEAR(chrf("", "c", o), 0.0, 1e-4);
  EXPECT_NEAR(eval::corpus_chrf({"a", "b"}, {{"a", "c"}}, o).score, 50.0, 1e-4);
  EXPECT_NEAR(chrf("aa", "ab", o), 25.0, 1e-4);
  o.whitespace = true;
  EXPECT_NEAR(chrf("Die Beziehung zwischen Obama und Netanjahu ist nicht gerade freundlich.",
                   "Das Verhältnis zwischen Obama und Netanyahu ist nicht gerade freundschaftlich.", o),
              67.3481606, 1e-4);
  EXPECT_NEAR(chrf("risk assessment must be made of those who are qualified and expertise in the sector - these are the scientists .",
                   "risk assessment has to be undertaken by those who are qualified and expert in that area - that is the scientists .", o),
              65.2414427, 1e-4);
}

TEST(Chrf, SacrebleuSentenceValuesBeta2) {
  eval::ChrfOptions o;
  o.eps_smoothing = true;
  EXPECT_NEAR(chrf("Co nás nejvíc trápí, protože lékaři si vybírají, kdo bude žít a kdo zemře.",
                   "Nejvíce smutní jsme z toho, že musíme rozhodovat o tom, kdo bude žít a kdo zemře.", o),
              39.14078509, 1e-4);
  EXPECT_NEAR(chrf("Nebo prostě nemají vybavení, které by jim pomohlo, uvedli lékaři.",
                   "A někdy nemáme ani potřebný materiál, abychom jim pomohli, popsali lékaři.", o),
              31.22557079, 1e-4);
  EXPECT_NEAR(chrf("Lapali po dechu, jejich životy skončily dřív, než skutečně začaly.",
                   "Lapali po dechu a pak jejich život skončil - dřív, než skutečně mohl začít, připomněli.", o),
              57.15704367, 1e-4);
}

TEST(Chrf, MultipleReferencesTakeTheBestPerSentence) {
  const eval::ChrfOptions o;
  EXPECT_NEAR(eval::corpus_chrf({"the cat"}, {{"a dog"}, {"the cat"}}, o).score, 100.0, 1e-9);
  const auto err = [] {
    try {
      eval::corpus_chrf({"a", "b"}, {{"a"}});
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  }();
  EXPECT_NE(err.find("2 lines"), std::string::npos) << err;
  EXPECT_NE(err.find("1 lines"), std::string::npos) << err;
}

TEST(Chrf, EmptyReferenceLineCountsNoHypothesisNgrams) {
  // sacreBLEU 2.6.0: corpus_chrf(["the cat", "x"], [["the cat sat", ""]]) = 55.77101053281037;
  // the "x" against an empty reference adds nothing (before: its n-grams lowered precision).
  EXPECT_NEAR(eval::corpus_chrf({"the cat", "x"}, {{"the cat sat", ""}}).score, 55.77101053, 1e-6);
}

TEST(SacreBleu, ReadmeExampleTwoReferenceSets) {
  const std::vector<std::string> hyps = {"The dog bit the man.", "It wasn't surprising.",
                                         "The man had just bitten him."};
  const std::vector<std::vector<std::string>> refs = {
      {"The dog bit the man.", "It was not unexpected.", "The man bit him first."},
      {"The dog had bit the man.", "No one was surprised.", "The man had bitten the dog."}};
  EXPECT_NEAR(eval::corpus_bleu(hyps, refs, {"13a", false}).score, 48.530827, 1e-6);  // sacreBLEU
  EXPECT_NEAR(eval::corpus_bleu(hyps, refs, {"none", false}).score, 49.1919566, 1e-6);  // sacreBLEU
  EXPECT_EQ(eval::corpus_bleu({"", "", ""}, refs).score, 0.0);  // sacreBLEU: empty lines stay
}

TEST(SacreBleu, NgramStatistics) {
  const auto b = eval::corpus_bleu({"am I am a character sequence"},
                                   {{"I am a symbol string sequence a a"}}, {"none", false});
  EXPECT_EQ(b.correct, (std::array<int64_t, 4>{4, 2, 1, 0}));  // sacreBLEU
  EXPECT_EQ(b.total, (std::array<int64_t, 4>{6, 5, 4, 3}));
}

TEST(Text, LowercaseBeyondAscii) {
  EXPECT_EQ(lowercase("ÄÖÜ Straße ẞ"), "äöü straße ß");
  EXPECT_EQ(lowercase("ÉCOLE Łódź ŸVES"), "école łódź ÿves");
  EXPECT_EQ(lowercase("ΑΘΗΝΑ Ώρα МОСКВА Ёж"), "αθηνα ώρα москва ёж");
  EXPECT_EQ(lowercase("İ"), "i\u0307");  // as Python's str.lower()
  EXPECT_EQ(lowercase("× ÷ 123"), "× ÷ 123");
  EXPECT_NEAR(eval::corpus_bleu({"ÜBER DEN FLUSS UND ÜBER DIE BRÜCKE"}, {{"über den fluss und über die brücke"}}, {"13a", true}).score, 100.0, 1e-9);
  EXPECT_EQ(utf8_decode("a\xff" "b"), (std::u32string{U'a', 0xFFFD, U'b'}));
  EXPECT_TRUE(is_space(0xA0));
  EXPECT_FALSE(is_space(U'x'));
}

}  // namespace
}  // namespace attend
