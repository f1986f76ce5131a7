// WordPiece tokenization on a small hand-written vocabulary (tests/python/test_hf_bert.py checks
// it id for id against HuggingFace's on real corpora), and the Unicode tables it reads.
#include <gtest/gtest.h>

#include "core/unicode.h"
#include "data/tokenizer.h"
#include "data/wordpiece.h"
#include "util.h"

namespace attend {
namespace {

using test::error_of;

// ids: [PAD] 0, [UNK] 1, [CLS] 2, [SEP] 3, [MASK] 4, then the words.
const char* const kVocab =
    "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nthe\nplay\n##ing\n##s\n,\n.\n!\ncafe\n\xe4\xb8\xad\n"
    "\xe6\x96\x87\nun\n##aff\n##able\nHello";

data::WordPiece vocab(bool lowercase = true) {
  data::WordPieceOptions o;
  o.lowercase = o.strip_accents = lowercase;
  return data::WordPiece(kVocab, o, "vocab.txt");
}

TEST(Unicode, CategoriesCaseAndAccents) {
  EXPECT_TRUE(is_punctuation(U'\u00bf'));
  EXPECT_TRUE(is_other(U'\u200b'));  // Cf
  EXPECT_TRUE(is_other(U'\ue000'));  // Co
  EXPECT_FALSE(is_other(0x378));     // unassigned: kept, as HuggingFace keeps it
  EXPECT_TRUE(is_space_separator(U'\u3000'));
  EXPECT_TRUE(is_nonspacing_mark(U'\u0301'));
  EXPECT_EQ(to_lower(U'\u01c5'), U'\u01c6');  // title-case Dž
  EXPECT_EQ(to_lower(U'\u0391'), U'\u03b1');
  EXPECT_EQ(utf8_encode(strip_accents(utf8_decode("Cr\xc3\xa8me bru\xcc\x82le\xcc\x81"
                                                  "e"))),
            "Creme brulee");
  // A Hangul syllable decomposes into its conjoining jamo (한 = ᄒ ᅡ ᆫ).
  EXPECT_EQ(strip_accents(U"\ud55c"), (std::u32string{0x1112, 0x1161, 0x11AB}));
}

TEST(WordPiece, SplitsWordsIntoLongestPieces) {
  const data::WordPiece w = vocab();
  EXPECT_EQ(w.encode("The playing, plays!"), (std::vector<int32_t>{5, 6, 7, 9, 6, 8, 11}));
  EXPECT_EQ(w.encode("unaffable"), (std::vector<int32_t>{15, 16, 17}));
  EXPECT_EQ(w.encode("CAF\xc3\x89"), (std::vector<int32_t>{12}));  // lowercased, accent gone
  EXPECT_EQ(w.encode("\xe4\xb8\xad\xe6\x96\x87"), (std::vector<int32_t>{13, 14}));  // CJK apart
  EXPECT_EQ(w.encode("playx the"), (std::vector<int32_t>{1, 5}));  // no piece: whole word UNK
  EXPECT_EQ(w.encode(std::string(101, 'a')), (std::vector<int32_t>{1}));  // over 100 characters
  EXPECT_EQ(w.encode("the \xe2\x80\x8bplay\x01ing"), (std::vector<int32_t>{5, 6, 7}));  // cleaned
  EXPECT_EQ(w.encode("the [MASK] [SEP]"), (std::vector<int32_t>{5, 4, 3}));
  EXPECT_EQ(w.encode("the[MASK]."), (std::vector<int32_t>{5, 4, 10}));
  EXPECT_TRUE(w.encode(" \t\n").empty());
  EXPECT_EQ(w.decode({2, 5, 6, 7, 9, 6, 8, 11, 1, 3, 0}), "the playing, plays! [UNK]");
  const data::WordPiece cased = vocab(false);
  EXPECT_EQ(cased.encode("Hello hello"), (std::vector<int32_t>{18, 1}));
}

TEST(WordPiece, SerialisesIntoTheTokenizerAndBack) {
  const data::Tokenizer t = data::Tokenizer::from_wordpiece(vocab(false));
  const data::Tokenizer back = data::Tokenizer::from_bytes(t.bytes(), "tokenizer.model");
  ASSERT_NE(back.wordpiece(), nullptr);
  EXPECT_FALSE(back.wordpiece()->options().lowercase);
  EXPECT_EQ(back.vocab_size(), 19);
  EXPECT_EQ(back.encode("Hello playing"), (std::vector<int32_t>{18, 6, 7}));
  EXPECT_EQ((std::vector<int32_t>{back.pad_id(), back.unk_id(), back.bos_id(), back.eos_id(),
                                  back.mask_id()}),
            (std::vector<int32_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(back.piece(8), "##s");
}

TEST(WordPiece, BadVocabulariesNameTheFileAndLine) {
  const data::WordPieceOptions o;
  EXPECT_NE(error_of([&] {
              data::WordPiece("[PAD]\n[UNK]\n\n[CLS]", o, "v.txt");
            }).find("v.txt: line 3: an empty token"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              data::WordPiece("[PAD]\n[UNK]\n[PAD]", o, "v.txt");
            }).find("v.txt: line 3: token '[PAD]' is listed twice (first at line 1)"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              data::WordPiece("[PAD]\n[UNK]\n[SEP]", o, "v.txt");
            }).find("v.txt: the vocabulary has no [CLS] token"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              data::Tokenizer::from_bytes(
                  "attend-wordpiece 1 lowercase=2 strip_accents=1 "
                  "chinese_chars=1 clean_text=1\n[PAD]",
                  "m/tokenizer.model");
            }).find("m/tokenizer.model: line 1: expected lowercase=0 or lowercase=1"),
            std::string::npos);
}

}  // namespace
}  // namespace attend
