// WordPiece: the tokenizer of BERT and its descendants, id for id with HuggingFace's fast
// tokenizer (the `tokenizers` library). Text is cleaned (NUL, U+FFFD and category C code points
// other than tab, newline and carriage return removed; whitespace becomes a space), CJK
// ideographs are set apart by spaces, accents are stripped and the text lowercased when the
// vocabulary is uncased, words are split at whitespace and around each punctuation character,
// and each word becomes its longest vocabulary prefix followed by the longest "##"-prefixed
// continuations ([UNK] for the whole word when that fails or the word is longer than 100
// characters). The special tokens ([CLS], [SEP], [PAD], [UNK], [MASK]) written in the text are
// those tokens.
//
// Serialised (tokenizer.model of a model directory): the line
//   attend-wordpiece 1 lowercase=B strip_accents=B chinese_chars=B clean_text=B
// then vocab.txt as HuggingFace writes it: one token per line, line i holding id i.
#pragma once
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "data/specials.h"

namespace attend::data {

struct WordPieceOptions {
  bool lowercase = true;
  bool strip_accents = true;
  bool chinese_chars = true;
  bool clean_text = true;
};

class WordPiece {
 public:
  /// The vocabulary of vocab.txt (`text`, one token per line); errors name `name` and the line.
  WordPiece(const std::string& text, const WordPieceOptions& options, const std::string& name);
  /// Reads the serialised form (header line, then the vocabulary).
  static WordPiece parse(const std::string& serialized, const std::string& name);
  static bool is_serialized(const std::string& bytes);
  std::string serialize() const;

  std::vector<int32_t> encode(const std::string& text) const;
  std::vector<std::string> pieces(const std::string& text) const;
  /// Tokens joined by spaces, "##" continuations and the marks . ? ! , attached, special tokens
  /// but [UNK] dropped (HuggingFace's decode, skip_special_tokens, without the optional
  /// clean_up_tokenization_spaces -- except that [UNK] stays visible).
  std::string decode(const std::vector<int32_t>& ids) const;
  const std::string& piece(int32_t id) const { return tokens_[static_cast<size_t>(id)]; }
  int64_t vocab_size() const { return static_cast<int64_t>(tokens_.size()); }
  const WordPieceOptions& options() const { return options_; }

  int32_t pad_id() const { return pad_; }
  int32_t unk_id() const { return unk_; }
  int32_t cls_id() const { return cls_; }
  int32_t sep_id() const { return sep_; }
  int32_t mask_id() const { return mask_; }  // -1: none

 private:
  /// The normalised words of a span of text without special tokens.
  std::vector<std::u32string> words(const std::string& text) const;
  /// Appends the ids of one word.
  void word_ids(const std::u32string& word, std::vector<int32_t>& out) const;
  int32_t id_of(const std::string& token) const;

  WordPieceOptions options_;
  std::vector<std::string> tokens_;
  std::unordered_map<std::string, int32_t> ids_;
  int32_t pad_ = -1, unk_ = -1, cls_ = -1, sep_ = -1, mask_ = -1;
  std::vector<SpecialToken> specials_;  // those of the vocabulary
};

}  // namespace attend::data
