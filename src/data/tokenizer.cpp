// SentencePiece wrapper (see tokenizer.h).
#include "data/tokenizer.h"

#include <fcntl.h>
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "core/error.h"
#include "core/rng.h"
#include "core/utf8.h"
#include "data/byte_bpe.h"
#include "data/marian_vocab.h"
#include "data/t5_vocab.h"
#include "data/wordpiece.h"
#include "io/file.h"

namespace attend::data {
namespace {

class VectorIterator : public sentencepiece::SentenceIterator {
 public:
  explicit VectorIterator(const std::vector<const std::string*>& s) : s_(s) {}
  bool done() const override { return i_ >= s_.size(); }
  void Next() override { ++i_; }
  const std::string& value() const override { return *s_[i_]; }
  sentencepiece::util::Status status() const override { return {}; }

 private:
  const std::vector<const std::string*>& s_;
  size_t i_ = 0;
};

constexpr std::string_view kCharHeader = "attend-char-vocab 1\n";

// The UTF-8 characters of valid UTF-8 text, one string each.
std::vector<std::string> split_chars(std::string_view text) {
  std::vector<std::string> out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const auto b = static_cast<unsigned char>(text[i]);
    const size_t n = b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
    out.emplace_back(text.substr(i, n));
    i += n;
  }
  return out;
}

}  // namespace

Tokenizer::Tokenizer() : sp_(std::make_unique<sentencepiece::SentencePieceProcessor>()) {}
Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;

Tokenizer Tokenizer::from_wordpiece(WordPiece wordpiece) {
  Tokenizer t;
  t.bytes_ = wordpiece.serialize();
  t.wp_ = std::make_unique<WordPiece>(std::move(wordpiece));
  return t;
}

Tokenizer Tokenizer::from_byte_bpe(ByteBpe bpe) {
  ATTEND_CHECK(bpe.end_of_text() >= 0,
               "tokenizer: a byte-level BPE vocabulary needs a special end-of-text token");
  Tokenizer t;
  t.bytes_ = bpe.serialize();
  t.bpe_ = std::make_unique<ByteBpe>(std::move(bpe));
  return t;
}

Tokenizer Tokenizer::from_marian(MarianVocab vocab) {
  Tokenizer t;
  t.bytes_ = vocab.serialize();
  t.marian_ = std::make_unique<MarianVocab>(std::move(vocab));
  return t;
}

Tokenizer Tokenizer::from_t5(T5Vocab vocab) {
  Tokenizer t;
  t.bytes_ = vocab.serialize();
  t.t5_ = std::make_unique<T5Vocab>(std::move(vocab));
  return t;
}

Tokenizer Tokenizer::from_bytes(const std::string& serialized, const std::string& name) {
  if (WordPiece::is_serialized(serialized))
    return from_wordpiece(WordPiece::parse(serialized, name));
  if (ByteBpe::is_serialized(serialized)) return from_byte_bpe(ByteBpe::parse(serialized, name));
  if (MarianVocab::is_serialized(serialized))
    return from_marian(MarianVocab::parse(serialized, name));
  if (T5Vocab::is_serialized(serialized)) return from_t5(T5Vocab::parse(serialized, name));
  Tokenizer t;
  if (serialized.rfind(kCharHeader, 0) == 0) {
    const std::string_view body = std::string_view(serialized).substr(kCharHeader.size());
    ATTEND_CHECK(valid_utf8(body), "{}: character vocabulary is not valid UTF-8", name);
    t.chars_ = split_chars(body);
    ATTEND_CHECK(!t.chars_.empty(), "{}: character vocabulary has no characters", name);
    for (size_t i = 0; i < t.chars_.size(); ++i) {
      const bool fresh = t.char_ids_.emplace(t.chars_[i], static_cast<int32_t>(i) + 4).second;
      ATTEND_CHECK(fresh, "{}: character vocabulary lists a character twice (id {})", name, i + 4);
    }
    t.bytes_ = serialized;
    return t;
  }
  const auto st = t.sp_->LoadFromSerializedProto(serialized);
  ATTEND_CHECK(st.ok(), "{}: not a SentencePiece model: {}", name, st.ToString());
  ATTEND_CHECK(t.sp_->pad_id() == kPadId && t.sp_->unk_id() == kUnkId && t.sp_->bos_id() == kBosId &&
                   t.sp_->eos_id() == kEosId,
               "{}: SentencePiece model must use pad 0, unk 1, bos 2, eos 3 (has pad {}, unk {}, "
               "bos {}, eos {}); train it with attend vocab or spm_train --pad_id=0 --unk_id=1 "
               "--bos_id=2 --eos_id=3", name, t.sp_->pad_id(), t.sp_->unk_id(), t.sp_->bos_id(),
               t.sp_->eos_id());
  t.bytes_ = serialized;
  return t;
}

Tokenizer Tokenizer::load(const std::string& path) { return from_bytes(io::read_file(path), path); }

Tokenizer Tokenizer::train(const std::vector<std::string>& sentences, const TokenizerOptions& o) {
  ATTEND_CHECK(!sentences.empty(), "vocab: no training sentences");
  ATTEND_CHECK(o.model_type == "bpe" || o.model_type == "unigram",
               "vocab.type: expected bpe, unigram or char, got '{}'", o.model_type);
  ATTEND_CHECK(o.vocab_size >= 8, "vocab.size: expected >= 8, got {}", o.vocab_size);
  // A deterministic sample when the corpus is larger than max_sentences.
  std::vector<const std::string*> sample;
  for (const auto& s : sentences) sample.push_back(&s);
  if (static_cast<int64_t>(sample.size()) > o.max_sentences) {
    for (size_t i = sample.size() - 1; i > 0; --i)
      std::swap(sample[i], sample[philox4x32(o.seed, 0x5b, i)[0] % (i + 1)]);
    sample.resize(static_cast<size_t>(o.max_sentences));
  }
  VectorIterator it(sample);
  const std::string args = format(
      "--model_type={} --vocab_size={} --character_coverage={} --split_digits={} "
      "--pad_id=0 --unk_id=1 --bos_id=2 --eos_id=3 --hard_vocab_limit=false "
      "--input_sentence_size={} --shuffle_input_sentence=false --num_threads=2 "
      "--max_sentence_length=65536 --minloglevel=2{}",
      o.model_type, o.vocab_size, o.character_coverage, o.split_digits ? "true" : "false",
      sample.size() > 100 ? sample.size() : 0,  // SentencePiece: 0 (all) or > 100
      o.mask_token ? std::string(" --user_defined_symbols=") + kMaskPiece : std::string());
  std::string model;
  // SentencePiece logs its command line to stderr before it reads --minloglevel; the outcome
  // comes back in the status, so stderr is muted for the call.
  std::fflush(stderr);
  const int saved = ::dup(2), null = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  if (saved >= 0 && null >= 0) ::dup2(null, 2);
  const auto st = sentencepiece::SentencePieceTrainer::Train(args, &it, &model);
  if (saved >= 0 && null >= 0) ::dup2(saved, 2);
  if (saved >= 0) ::close(saved);
  if (null >= 0) ::close(null);
  ATTEND_CHECK(st.ok(), "vocab: SentencePiece training failed: {}", st.ToString());
  return from_bytes(model, "trained tokenizer");
}

Tokenizer Tokenizer::train_chars(const std::string& text) {
  ATTEND_CHECK(valid_utf8(text), "vocab: the text is not valid UTF-8");
  std::vector<std::string> chars = split_chars(text);
  ATTEND_CHECK(!chars.empty(), "vocab: no text to build a character vocabulary from");
  // Code-point order is byte order for UTF-8.
  std::sort(chars.begin(), chars.end());
  chars.erase(std::unique(chars.begin(), chars.end()), chars.end());
  std::string bytes(kCharHeader);
  for (const auto& c : chars) bytes += c;
  return from_bytes(bytes, "character vocabulary");
}

std::vector<int32_t> Tokenizer::encode_target(const std::string& text) const {
  return marian_ ? marian_->encode(text, true) : encode(text);
}

std::vector<int32_t> Tokenizer::encode(const std::string& text) const {
  if (marian_) return marian_->encode(text, false);
  if (t5_) return t5_->encode(text);
  if (wp_ || bpe_) {
    ATTEND_CHECK(valid_utf8(text), "tokenizer: invalid UTF-8 in '{}'",
                 repair_utf8(text.substr(0, 80)));
    return wp_ ? wp_->encode(text) : bpe_->encode(text);
  }
  if (is_char()) {
    ATTEND_CHECK(valid_utf8(text), "tokenizer: invalid UTF-8 in '{}'",
                 repair_utf8(text.substr(0, 80)));
    std::vector<int32_t> ids;
    for (const auto& c : split_chars(text)) {
      const auto it = char_ids_.find(c);
      ids.push_back(it == char_ids_.end() ? kUnkId : it->second);
    }
    return ids;
  }
  std::vector<int> ids;
  const auto st = sp_->Encode(text, &ids);
  ATTEND_CHECK(st.ok(), "tokenizer: cannot encode '{}': {}", text.substr(0, 80), st.ToString());
  return {ids.begin(), ids.end()};
}

std::vector<std::string> Tokenizer::pieces(const std::string& text) const {
  if (marian_) return marian_->pieces(text, false);
  if (t5_) return t5_->pieces(text);
  if (wp_) {
    ATTEND_CHECK(valid_utf8(text), "tokenizer: invalid UTF-8");
    return wp_->pieces(text);
  }
  if (bpe_) {
    std::vector<std::string> out;
    for (int32_t id : encode(text)) out.push_back(bpe_->piece(id));
    return out;
  }
  if (is_char()) {
    ATTEND_CHECK(valid_utf8(text), "tokenizer: invalid UTF-8");
    return split_chars(text);
  }
  std::vector<std::string> p;
  const auto st = sp_->Encode(text, &p);
  ATTEND_CHECK(st.ok(), "tokenizer: cannot encode: {}", st.ToString());
  return p;
}

std::string Tokenizer::piece(int32_t id) const {
  ATTEND_CHECK(id >= 0 && id < vocab_size(), "tokenizer: id {} outside the vocabulary of {}", id,
               vocab_size());
  if (wp_) return wp_->piece(id);
  if (bpe_) return bpe_->piece(id);
  if (marian_) return marian_->piece(id);
  if (t5_) return t5_->piece(id);
  if (is_char()) {
    static const char* const kSpecial[] = {"<pad>", "<unk>", "<s>", "</s>"};
    return id > kEosId ? chars_[static_cast<size_t>(id - 4)] : kSpecial[id];
  }
  return sp_->IdToPiece(id);
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  if (wp_) return wp_->decode(ids);
  if (bpe_) return bpe_->decode(ids, true);
  if (marian_) return marian_->decode(ids);
  if (t5_) return t5_->decode(ids);
  if (is_char()) {
    std::string out;
    for (int32_t id : ids) {
      if (id == kUnkId) out += "\u2047";  // what SentencePiece shows for unk
      else if (id > kEosId && id < vocab_size()) out += chars_[static_cast<size_t>(id - 4)];
    }
    return out;
  }
  std::vector<int> v;
  for (int32_t id : ids)
    if ((id > kEosId || id == kUnkId) && id < vocab_size()) v.push_back(id);
  std::string out;
  const auto st = sp_->Decode(v, &out);
  ATTEND_CHECK(st.ok(), "tokenizer: cannot decode: {}", st.ToString());
  return out;
}

int64_t Tokenizer::vocab_size() const {
  if (wp_) return wp_->vocab_size();
  if (bpe_) return bpe_->vocab_size();
  if (marian_) return marian_->vocab_size();
  if (t5_) return t5_->vocab_size();
  return is_char() ? static_cast<int64_t>(chars_.size()) + 4 : sp_->GetPieceSize();
}
int32_t Tokenizer::pad_id() const {
  if (marian_) return marian_->pad_id();
  if (t5_) return t5_->pad_id();
  if (bpe_) return bpe_->end_of_text();
  return wp_ ? wp_->pad_id() : is_char() ? kPadId : sp_->pad_id();
}
int32_t Tokenizer::unk_id() const {
  if (marian_) return marian_->unk_id();
  if (t5_) return t5_->unk_id();
  if (bpe_) return bpe_->end_of_text();
  return wp_ ? wp_->unk_id() : is_char() ? kUnkId : sp_->unk_id();
}
int32_t Tokenizer::bos_id() const {
  if (marian_) return marian_->pad_id();  // MarianMT's decoder starts from pad
  if (t5_) return t5_->pad_id();          // and T5's
  if (bpe_) return bpe_->end_of_text();
  return wp_ ? wp_->cls_id() : is_char() ? kBosId : sp_->bos_id();
}
int32_t Tokenizer::eos_id() const {
  if (marian_) return marian_->eos_id();
  if (t5_) return t5_->eos_id();
  if (bpe_) return bpe_->end_of_text();
  return wp_ ? wp_->sep_id() : is_char() ? kEosId : sp_->eos_id();
}
int32_t Tokenizer::mask_id() const {
  if (wp_) return wp_->mask_id();
  if (bpe_ || marian_ || t5_ || is_char()) return -1;
  const int id = sp_->PieceToId(kMaskPiece);
  return id == sp_->unk_id() ? -1 : id;
}

void Tokenizer::save(const std::string& path) const { io::write_file_atomic(path, bytes_); }

}  // namespace attend::data
