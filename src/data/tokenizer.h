// Tokenization: SentencePiece subwords, single characters (language models over raw text), or
// WordPiece, byte-level BPE, Marian's SentencePiece pair or T5's SentencePiece with sentinels
// (BERT's, GPT-2's, MarianMT's and T5's vocabularies, imported with their models:
// data/wordpiece.h, data/byte_bpe.h, data/marian_vocab.h, data/t5_vocab.h).
// attend's models reserve ids pad 0, unk 1, bos 2, eos 3; `train` makes a joint BPE or unigram
// model on sentences already in memory (so gzipped corpora work), `train_chars` a character
// vocabulary (every code point of the text, newline included, one id each, in code-point
// order). Either serialises to the bytes of tokenizer.model, which travel in every checkpoint: a
// character vocabulary is the line "attend-char-vocab 1" followed by its characters in id order; a
// WordPiece or byte-level BPE vocabulary is serialised as its header says.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace attend::data {

class WordPiece;
class ByteBpe;
class MarianVocab;
class T5Vocab;

constexpr int32_t kPadId = 0, kUnkId = 1, kBosId = 2, kEosId = 3;

struct TokenizerOptions {
  int64_t vocab_size = 8000;
  std::string model_type = "bpe";  // bpe | unigram
  double character_coverage = 1.0;
  bool split_digits = false;       // one piece per digit (numbers tasks)
  int64_t max_sentences = 2000000; // sampled from the corpus when larger
  uint64_t seed = 1;
  bool mask_token = false;         // reserve the piece "[MASK]" (masked-LM vocabularies: id 4)
};

/// The mask piece of a masked-LM vocabulary; in `fill-mask` text it marks the blank.
constexpr const char* kMaskPiece = "[MASK]";

class Tokenizer {
 public:
  Tokenizer();
  ~Tokenizer();
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;

  /// Loads a .model file; errors name the path.
  static Tokenizer load(const std::string& path);
  static Tokenizer from_bytes(const std::string& serialized, const std::string& name_for_errors);
  /// A WordPiece vocabulary (BERT's tokenizer, data/wordpiece.h): bos is [CLS], eos [SEP].
  static Tokenizer from_wordpiece(WordPiece wordpiece);
  /// A byte-level BPE vocabulary (GPT-2's, data/byte_bpe.h): pad, unk, bos and eos are all its
  /// first special token (<|endoftext|>).
  static Tokenizer from_byte_bpe(ByteBpe bpe);
  /// MarianMT's vocabulary (data/marian_vocab.h): bos is its pad id, where decoding starts.
  static Tokenizer from_marian(MarianVocab vocab);
  /// T5's vocabulary (data/t5_vocab.h): bos is its pad id, where decoding starts.
  static Tokenizer from_t5(T5Vocab vocab);
  /// Trains a joint model on `sentences` (both languages together).
  static Tokenizer train(const std::vector<std::string>& sentences, const TokenizerOptions& o);
  /// A character vocabulary of `text` (valid UTF-8): ids 4.. are its distinct code points.
  static Tokenizer train_chars(const std::string& text);
  /// True for a character vocabulary (text is a stream of characters, newlines included).
  bool is_char() const { return !chars_.empty(); }
  /// The WordPiece vocabulary, or null for the other kinds.
  const WordPiece* wordpiece() const { return wp_.get(); }
  /// The byte-level BPE vocabulary, or null for the other kinds.
  const ByteBpe* byte_bpe() const { return bpe_.get(); }
  /// True when a text is one stream of tokens, newlines included (characters, byte-level BPE):
  /// a language model reads it whole after one beginning id and continues a prompt without
  /// one; false when each line is a document (SentencePiece: BOS line EOS).
  bool is_stream() const { return is_char() || bpe_ != nullptr; }

  /// The ids of a text (a source, or any text of a one-sided vocabulary).
  std::vector<int32_t> encode(const std::string& text) const;
  /// The ids of a target text: encode(), except for vocabularies that segment the two sides
  /// differently (Marian's).
  std::vector<int32_t> encode_target(const std::string& text) const;
  /// Text of the ids; pad, bos and eos are dropped, unk decodes as SentencePiece shows it.
  std::string decode(const std::vector<int32_t>& ids) const;
  std::vector<std::string> pieces(const std::string& text) const;
  /// The piece of one id as the vocabulary spells it ("▁the", "<unk>"); an id outside the
  /// vocabulary is an error naming it.
  std::string piece(int32_t id) const;
  int64_t vocab_size() const;
  /// The special ids of this model (what decoding and model configs read; never constants).
  int32_t pad_id() const;
  int32_t unk_id() const;
  int32_t bos_id() const;
  int32_t eos_id() const;
  /// The id of kMaskPiece, or -1 when the vocabulary has none.
  int32_t mask_id() const;
  /// The serialized model (what `.model` files hold).
  const std::string& bytes() const { return bytes_; }
  void save(const std::string& path) const;  // atomic

 private:
  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
  std::unique_ptr<WordPiece> wp_;
  std::unique_ptr<ByteBpe> bpe_;
  std::unique_ptr<MarianVocab> marian_;
  std::unique_ptr<T5Vocab> t5_;
  std::string bytes_;
  std::vector<std::string> chars_;  // character vocabulary: id 4 + i is chars_[i] (UTF-8)
  std::unordered_map<std::string, int32_t> char_ids_;
};

}  // namespace attend::data
