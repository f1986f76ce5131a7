// The tokenizer of T5 checkpoints, id for id with transformers' T5Tokenizer (its default
// "legacy" behaviour): one SentencePiece model (spiece.model) gives the ids of its pieces, and
// `extra_ids` sentinel tokens follow them in reverse order (<extra_id_0> is the last id). The
// special tokens written in the text (</s>, <unk>, <pad> and the sentinels) are those tokens;
// a sentinel also swallows the whitespace on both sides of it. Each stretch of text between
// them is segmented on its own. The end token is appended by the model (model.source_eos) and
// decoding starts from the pad id (T5's decoder_start_token_id). Decoding drops every special
// id and joins the rest with the SentencePiece model, stripped (and, where the checkpoint's
// tokenizer_config.json asks for it, with transformers' clean-up of spaces before
// punctuation). The model's embedding may have more rows than the tokenizer has ids
// (32,128 against 32,100 for the published T5s): `rows` is the model's count, and the ids past
// the tokenizer's decode to nothing.
//
// Serialised (tokenizer.model of a model directory): the line
//   attend-t5-vocab 1 EXTRA_IDS ROWS CLEAN_UP
// then spiece.model.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/specials.h"

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace attend::data {

class T5Vocab {
 public:
  /// spm: the bytes of spiece.model (with pad, unk and end pieces); errors name `name`.
  T5Vocab(const std::string& spm, int64_t extra_ids, int64_t rows, bool clean_up,
          const std::string& name);
  ~T5Vocab();
  T5Vocab(T5Vocab&&) noexcept;
  T5Vocab& operator=(T5Vocab&&) noexcept;

  static bool is_serialized(const std::string& bytes);
  static T5Vocab parse(const std::string& serialized, const std::string& name);
  std::string serialize() const;

  /// The ids of a text, without the end token.
  std::vector<int32_t> encode(const std::string& text) const;
  std::vector<std::string> pieces(const std::string& text) const;
  /// The text of `ids` (transformers' decode with skip_special_tokens).
  std::string decode(const std::vector<int32_t>& ids) const;
  /// The piece of an id: SentencePiece's, "<extra_id_N>", or "" past the tokenizer's ids.
  std::string piece(int32_t id) const;
  int64_t vocab_size() const { return rows_; }
  int32_t pad_id() const { return pad_; }
  int32_t unk_id() const { return unk_; }
  int32_t eos_id() const { return eos_; }

 private:
  /// Each stretch of text (as SentencePiece ids) and special token of `text`, in order.
  void split(const std::string& text, const std::function<void(const std::string&)>& on_text,
             const std::function<void(int32_t)>& on_special) const;
  bool is_special(int32_t id) const;

  std::string spm_bytes_;
  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
  int64_t pieces_ = 0, extra_ids_ = 0, rows_ = 0;
  bool clean_up_ = false;
  std::vector<SpecialToken> specials_;
  int32_t pad_ = 0, unk_ = 0, eos_ = 0;
};

}  // namespace attend::data
