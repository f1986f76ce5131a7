// Byte-level BPE: the tokenizer of GPT-2 and its descendants, id for id with HuggingFace's fast
// tokenizer. Special tokens written in the text ("<|endoftext|>") are matched first; the rest
// is pre-split as GPT-2's pattern splits it
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// (hand-written below: no regular-expression engine), each piece's UTF-8 bytes are written as
// the 256 printable characters of the byte map, and the merges are applied by rank. Decoding
// maps the characters back to bytes; bytes that are not valid UTF-8 become U+FFFD.
//
// Serialised (tokenizer.model of a model directory): the line
//   attend-bytebpe 1 tokens=N merges=M specials=ID,ID,...
// then the N tokens in id order, one per line, then the M merges ("left right") by rank.
#pragma once
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "data/specials.h"

namespace attend::data {

class ByteBpe {
 public:
  /// tokens: id -> token (as vocab.json spells it); merges by rank, each "left right";
  /// specials: the ids of the tokens matched in raw text. `name` names the files in errors.
  ByteBpe(std::vector<std::string> tokens, const std::vector<std::string>& merges,
          const std::vector<int32_t>& specials, const std::string& name);
  static ByteBpe parse(const std::string& serialized, const std::string& name);
  static bool is_serialized(const std::string& bytes);
  std::string serialize() const;

  std::vector<int32_t> encode(const std::string& text) const;
  /// The text of the ids (special tokens dropped when `skip_special`).
  std::string decode(const std::vector<int32_t>& ids, bool skip_special) const;
  const std::string& piece(int32_t id) const { return tokens_[static_cast<size_t>(id)]; }
  int64_t vocab_size() const { return static_cast<int64_t>(tokens_.size()); }
  /// The merges by rank, each "left right" (what merges.txt lists).
  const std::vector<std::string>& merges() const { return merges_; }
  /// The first special token ("<|endoftext|>" for GPT-2): beginning and end of text.
  int32_t end_of_text() const { return specials_.empty() ? -1 : specials_.front().id; }
  bool is_special(int32_t id) const;

 private:
  void piece_ids(const std::string& piece, std::vector<int32_t>& out) const;

  std::vector<std::string> tokens_;
  std::unordered_map<std::string, int32_t> ids_;
  std::vector<std::string> merges_;
  std::unordered_map<std::string, int32_t> ranks_;  // "left right" -> rank
  std::vector<SpecialToken> specials_;
};

}  // namespace attend::data
