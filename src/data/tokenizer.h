// Subword tokenization with SentencePiece. attend's models reserve ids pad 0, unk 1, bos 2,
// eos 3; `train_tokenizer` trains a joint BPE or unigram model on sentences already in memory
// (so gzipped corpora work) and the serialized model travels inside every checkpoint.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace attend::data {

constexpr int32_t kPadId = 0, kUnkId = 1, kBosId = 2, kEosId = 3;

struct TokenizerOptions {
  int64_t vocab_size = 8000;
  std::string model_type = "bpe";  // bpe | unigram
  double character_coverage = 1.0;
  bool split_digits = false;       // one piece per digit (numbers tasks)
  int64_t max_sentences = 2000000; // sampled from the corpus when larger
  uint64_t seed = 1;
};

class Tokenizer {
 public:
  Tokenizer();
  ~Tokenizer();
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;

  /// Loads a .model file; errors name the path.
  static Tokenizer load(const std::string& path);
  static Tokenizer from_bytes(const std::string& serialized, const std::string& name_for_errors);
  /// Trains a joint model on `sentences` (both languages together).
  static Tokenizer train(const std::vector<std::string>& sentences, const TokenizerOptions& o);

  std::vector<int32_t> encode(const std::string& text) const;
  /// Text of the ids; pad, bos and eos are dropped, unk decodes as SentencePiece shows it.
  std::string decode(const std::vector<int32_t>& ids) const;
  std::vector<std::string> pieces(const std::string& text) const;
  int64_t vocab_size() const;
  /// The special ids of this model (what decoding and model configs read; never constants).
  int32_t pad_id() const;
  int32_t unk_id() const;
  int32_t bos_id() const;
  int32_t eos_id() const;
  /// The serialized model (what `.model` files hold).
  const std::string& bytes() const { return bytes_; }
  void save(const std::string& path) const;  // atomic

 private:
  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
  std::string bytes_;
};

}  // namespace attend::data
