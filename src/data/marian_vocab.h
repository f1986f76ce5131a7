// The tokenizer of MarianMT (OPUS-MT) checkpoints, id for id with HuggingFace's MarianTokenizer:
// two SentencePiece models segment the text -- source.spm the source side, target.spm the
// target side -- and vocab.json, shared by both sides, gives each piece its id (<unk> for a
// piece it lacks). The special tokens written in the text (</s>, <unk>, <pad>) are those
// tokens; each stretch of text between them is segmented on its own, after its leading
// language code (">>deu<<": the greedy match of >>.+<< at its start) is taken out as one
// token and every other such match is removed. Decoding drops pad, end and unknown ids and
// joins the rest with target.spm. The end token is appended by the model (model.source_eos),
// and decoding starts from the pad id (MarianMT's decoder_start_token_id).
//
// Serialised (tokenizer.model of a model directory): the line
//   attend-marian-vocab 1 SOURCE_BYTES TARGET_BYTES TOKENS PAD UNK EOS
// then source.spm, target.spm and the vocabulary, one token per line (line i holding id i).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "data/specials.h"

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace attend::data {

class MarianVocab {
 public:
  /// source/target: the bytes of source.spm and target.spm; tokens: vocab.json in id order;
  /// the pad, unk and eos tokens by name. Errors name `name`.
  MarianVocab(const std::string& source, const std::string& target, std::vector<std::string> tokens,
              const std::string& pad, const std::string& unk, const std::string& eos,
              const std::string& name);
  ~MarianVocab();
  MarianVocab(MarianVocab&&) noexcept;
  MarianVocab& operator=(MarianVocab&&) noexcept;

  static bool is_serialized(const std::string& bytes);
  static MarianVocab parse(const std::string& serialized, const std::string& name);
  std::string serialize() const;

  /// The ids of a source (target: false) or target text, without the end token.
  std::vector<int32_t> encode(const std::string& text, bool target) const;
  std::vector<std::string> pieces(const std::string& text, bool target) const;
  /// The target text of `ids` (HuggingFace's decode with skip_special_tokens).
  std::string decode(const std::vector<int32_t>& ids) const;
  const std::string& piece(int32_t id) const { return tokens_[static_cast<size_t>(id)]; }
  int64_t vocab_size() const { return static_cast<int64_t>(tokens_.size()); }
  int32_t pad_id() const { return pad_; }
  int32_t unk_id() const { return unk_; }
  int32_t eos_id() const { return eos_; }

 private:
  std::string source_bytes_, target_bytes_;
  std::unique_ptr<sentencepiece::SentencePieceProcessor> source_, target_;
  std::vector<std::string> tokens_;
  std::unordered_map<std::string, int32_t> ids_;
  std::vector<SpecialToken> specials_;
  int32_t pad_ = 0, unk_ = 0, eos_ = 0;
};

}  // namespace attend::data
