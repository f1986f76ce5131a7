// WordPiece and byte-level BPE on small hand-written vocabularies (tests/python/test_hf_bert.py
// and test_hf_gpt2.py check them id for id against HuggingFace's on real corpora), and the
// Unicode tables they read.
#include <gtest/gtest.h>

#include "core/unicode.h"
#include "data/byte_bpe.h"
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

// Every byte as its own token (GPT-2's byte characters), then merged tokens and <|endoftext|>.
data::ByteBpe byte_vocab() {
  std::vector<std::string> tokens;
  char32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    const char32_t c = printable ? static_cast<char32_t>(b) : next++;
    tokens.push_back(utf8_encode(std::u32string(1, c)));
  }
  // U+0120 (Ġ) is the space byte.
  for (const char* t : {"\xc4\xa0t", "he", "\xc4\xa0the", "\xc4\xa0\xc4\xa0", "<|endoftext|>"})
    tokens.push_back(t);
  return data::ByteBpe(tokens, {"\xc4\xa0 t", "h e", "\xc4\xa0t he", "\xc4\xa0 \xc4\xa0"}, {260},
                       "vocab.json");
}

TEST(ByteBpe, PreSplitsAsGpt2AndMergesByRank) {
  const data::ByteBpe v = byte_vocab();
  const auto ids = [&](const std::string& s) { return v.encode(s); };
  // " the" merges to one token; "the" at the start has no space: t + he.
  EXPECT_EQ(ids("the the"), (std::vector<int32_t>{'t', 257, 258}));
  // Contractions split off; a run of spaces keeps its last one for the next word.
  EXPECT_EQ(ids("it's"), (std::vector<int32_t>{'i', 't', '\'', 's'}));
  EXPECT_EQ(ids("a   the"), (std::vector<int32_t>{'a', 259, 258}));
  // Letters, digits and other characters are separate pieces; a newline is its own.
  EXPECT_EQ(ids("a1!\nb"), (std::vector<int32_t>{'a', '1', '!', '\n', 'b'}));
  EXPECT_EQ(ids("x<|endoftext|>the"), (std::vector<int32_t>{'x', 260, 't', 257}));
  // Bytes of a multi-byte character: each byte its own token, decoded back whole.
  const std::vector<int32_t> euro = ids("\xe2\x82\xac");
  EXPECT_EQ(euro.size(), 3u);
  EXPECT_EQ(v.decode(euro, true), "\xe2\x82\xac");
  EXPECT_EQ(v.decode({euro[0], euro[1]}, true), "\xef\xbf\xbd\xef\xbf\xbd");  // cut: U+FFFD
  EXPECT_EQ(v.decode(ids("x<|endoftext|> the"), true), "x the");
  EXPECT_EQ(v.decode(ids("x<|endoftext|> the"), false), "x<|endoftext|> the");
}

TEST(ByteBpe, SerialisesIntoTheTokenizerAndBack) {
  const data::Tokenizer t = data::Tokenizer::from_byte_bpe(byte_vocab());
  const data::Tokenizer back = data::Tokenizer::from_bytes(t.bytes(), "tokenizer.model");
  EXPECT_TRUE(back.is_stream());
  EXPECT_EQ(back.vocab_size(), 261);
  EXPECT_EQ(back.encode("the the"), (std::vector<int32_t>{'t', 257, 258}));
  EXPECT_EQ((std::vector<int32_t>{back.pad_id(), back.unk_id(), back.bos_id(), back.eos_id()}),
            (std::vector<int32_t>{260, 260, 260, 260}));
  EXPECT_EQ(back.decode(back.encode("the end")), "the end");
  EXPECT_NE(error_of([] {
              data::ByteBpe({"a", "b", "a"}, {}, {}, "vocab.json");
            }).find("vocab.json: token 'a' has two ids (0 and 2)"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              data::ByteBpe({"a", "b"}, {"a  b"}, {}, "merges.txt");
            }).find("merges.txt: merge 1 ('a  b') must be two tokens separated by one space"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              data::Tokenizer::from_bytes("attend-bytebpe 1 tokens=3 merges=0\na\nb",
                                          "m/tokenizer.model");
            }).find("m/tokenizer.model: ends at line 4, expected 4 lines"),
            std::string::npos);
}

}  // namespace
}  // namespace attend
