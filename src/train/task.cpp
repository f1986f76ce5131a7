// The training tasks of the three model families (see task.h).
#include "train/task.h"

#include <cstdio>
#include <filesystem>
#include <limits>
#include <set>

#include "core/error.h"
#include "core/rng.h"
#include "data/corpus.h"
#include "data/numbers.h"
#include "decode/generator.h"
#include "decode/translator.h"
#include "eval/bleu.h"
#include "io/file.h"

namespace attend::train {
namespace fs = std::filesystem;
namespace {

struct Corpus {
  std::vector<std::string> train_src, train_tgt, valid_src, valid_tgt;
};

Corpus load_corpus(const io::Config& c) {
  Corpus out;
  const std::string gen = c.get_string("data.generate");
  if (gen != "none") {
    ATTEND_CHECK(gen == "numbers-en" || gen == "numbers-de",
                 "data.generate: expected none, numbers-en or numbers-de, got '{}'", gen);
    const auto lang =
        gen == "numbers-en" ? data::NumberLanguage::kEnglish : data::NumberLanguage::kGerman;
    const uint64_t seed = static_cast<uint64_t>(c.get_int("train.seed"));
    const int64_t n_train = c.get_int("data.generate_train"),
                  n_valid = c.get_int("data.generate_valid");
    const int64_t max = c.get_int("data.generate_max");
    // Validation numbers come from a disjoint index range of the same generator.
    for (const auto& p : data::generate_numbers(seed, n_train, 0, max, lang)) {
      out.train_src.push_back(p.digits);
      out.train_tgt.push_back(p.words);
    }
    // Held out: validation numbers that also occur in training are dropped.
    const std::set<std::string> seen(out.train_src.begin(), out.train_src.end());
    for (const auto& p : data::generate_numbers(seed + 7919, n_valid, 0, max, lang)) {
      if (seen.count(p.digits)) continue;
      out.valid_src.push_back(p.digits);
      out.valid_tgt.push_back(p.words);
    }
    return out;
  }
  ATTEND_CHECK(c.is_set("data.train_src") && c.is_set("data.train_tgt"),
               "data.train_src and data.train_tgt must name the training corpus (or set "
               "data.generate)");
  const std::string bad = c.get_string("data.bad_utf8");
  ATTEND_CHECK(bad == "error" || bad == "skip", "data.bad_utf8: expected error or skip, got '{}'",
               bad);
  const auto policy = bad == "skip" ? data::BadUtf8::kSkip : data::BadUtf8::kError;
  auto tr =
      data::read_parallel(c.get_string("data.train_src"), c.get_string("data.train_tgt"), policy);
  std::printf("data: %lld training pairs read", static_cast<long long>(tr.lines));
  if (tr.skipped_empty || tr.skipped_utf8)
    std::printf(" (skipped: %lld empty, %lld invalid UTF-8)",
                static_cast<long long>(tr.skipped_empty), static_cast<long long>(tr.skipped_utf8));
  std::printf("\n");
  out.train_src = std::move(tr.src);
  out.train_tgt = std::move(tr.tgt);
  if (c.is_set("data.valid_src") || c.is_set("data.valid_tgt")) {
    ATTEND_CHECK(c.is_set("data.valid_src") && c.is_set("data.valid_tgt"),
                 "data.valid_src and data.valid_tgt must be given together");
    auto va =
        data::read_parallel(c.get_string("data.valid_src"), c.get_string("data.valid_tgt"), policy);
    out.valid_src = std::move(va.src);
    out.valid_tgt = std::move(va.tgt);
  }
  const int64_t cap = c.get_int("data.valid_max_sentences");
  if (cap > 0 && static_cast<int64_t>(out.valid_src.size()) > cap) {
    out.valid_src.resize(cap);
    out.valid_tgt.resize(cap);
  }
  return out;
}

std::vector<data::Example> encode_pairs(const data::Tokenizer& tok, const nn::TransformerConfig& mc,
                                        const std::vector<std::string>& src,
                                        const std::vector<std::string>& tgt, int64_t max_len,
                                        int64_t* skipped) {
  std::vector<data::Example> out;
  out.reserve(src.size());
  for (size_t i = 0; i < src.size(); ++i) {
    data::Example e{mc.source(tok.encode(src[i])), tok.encode_target(tgt[i])};
    if (max_len > 0 && (static_cast<int64_t>(e.src.size()) > max_len ||
                        static_cast<int64_t>(e.tgt.size()) + 1 > max_len)) {
      if (skipped) ++*skipped;
      continue;
    }
    out.push_back(std::move(e));
  }
  return out;
}

// A language model's text: training and validation parts.
struct LmText {
  std::string train, valid;
};

// The byte offset of character `k` of valid UTF-8 text (its size when k is past the end).
size_t char_offset(const std::string& s, int64_t k) {
  int64_t seen = 0;
  for (size_t i = 0; i < s.size(); ++i)
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80 && seen++ == k) return i;
  return s.size();
}

int64_t char_count(const std::string& s) {
  int64_t n = 0;
  for (char ch : s) n += (static_cast<unsigned char>(ch) & 0xC0) != 0x80;
  return n;
}

LmText load_lm_text(const io::Config& c, nn::Arch arch) {
  ATTEND_CHECK(c.is_set("data.train_text"),
               "model.arch {} trains on text: set data.train_text (data.train_src and "
               "data.train_tgt are for translation)",
               nn::arch_name(arch));
  const std::string bad = c.get_string("data.bad_utf8");
  ATTEND_CHECK(bad == "error" || bad == "skip", "data.bad_utf8: expected error or skip, got '{}'",
               bad);
  const auto policy = bad == "skip" ? data::BadUtf8::kSkip : data::BadUtf8::kError;
  data::Text t = data::read_text(c.get_string("data.train_text"), policy);
  std::printf("data: %lld lines of text read", static_cast<long long>(t.lines));
  if (t.skipped_utf8)
    std::printf(" (%lld with invalid UTF-8 left out)", static_cast<long long>(t.skipped_utf8));
  std::printf("\n");
  LmText out;
  if (c.is_set("data.valid_text")) {
    out.train = std::move(t.text);
    out.valid = data::read_text(c.get_string("data.valid_text"), policy).text;
    return out;
  }
  const double f = c.get_float("data.valid_fraction");
  ATTEND_CHECK(f >= 0 && f < 1, "data.valid_fraction: expected a share in [0, 1), got {}", f);
  // nanoGPT's split: the first (1 - f) of the characters train, the rest validates.
  const int64_t n = char_count(t.text);
  const size_t cut = char_offset(t.text, static_cast<int64_t>(static_cast<double>(n) * (1 - f)));
  out.train = t.text.substr(0, cut);
  out.valid = t.text.substr(cut);
  return out;
}

// ---------------------------------------------------------------- translation

// What every family writes the same way for its model class M: making the model and
// keeping a typed pointer to it once bound.
template <class M, class Base>
class Family : public Base {
 public:
  using Base::Base;
  std::unique_ptr<nn::Model> make_model(const nn::TransformerConfig& mc,
                                        uint64_t seed) const override {
    return std::make_unique<M>(mc, seed);
  }
  void bind(nn::Model& model, const data::Tokenizer& tok) override {
    Base::bind(model, tok);
    model_ = &dynamic_cast<M&>(model);
  }

 protected:
  const M* model_ = nullptr;
};

class TranslationTask : public Family<nn::EncoderDecoder, Task> {
 public:
  void check(const io::Config&, TrainOptions&) const override {}
  void read(const io::Config& c) override { corpus_ = load_corpus(c); }
  std::vector<std::string> vocabulary_sentences(const io::Config&) const override {
    std::vector<std::string> all = corpus_.train_src;
    all.insert(all.end(), corpus_.train_tgt.begin(), corpus_.train_tgt.end());
    return all;
  }
  void write_files(const io::Config& c, const std::string& out) const override {
    if (c.get_string("data.generate") == "none") return;  // the generated held-out set
    std::string src, ref;
    for (size_t i = 0; i < corpus_.valid_src.size(); ++i) {
      src += corpus_.valid_src[i] + "\n";
      ref += corpus_.valid_tgt[i] + "\n";
    }
    io::write_file_atomic((fs::path(out) / "valid.src").string(), src);
    io::write_file_atomic((fs::path(out) / "valid.ref").string(), ref);
  }
  void encode(const io::Config& c, const data::Tokenizer& tok, const nn::TransformerConfig& mc,
              std::vector<data::Example>& train, ValidationSet& valid) const override {
    int64_t too_long = 0;
    const int64_t max_len = c.get_int("data.max_length");
    train = encode_pairs(tok, mc, corpus_.train_src, corpus_.train_tgt, max_len, &too_long);
    valid = {encode_pairs(tok, mc, corpus_.valid_src, corpus_.valid_tgt, 0, nullptr),
             corpus_.valid_src, corpus_.valid_tgt};
    std::printf(
        "data: %zu training pairs (%lld longer than %lld subwords skipped), %zu validation pairs\n",
        train.size(), static_cast<long long>(too_long), static_cast<long long>(max_len),
        valid.examples.size());
    ATTEND_CHECK(!train.empty(), "data: no training pairs left after filtering");
  }
  std::string describe(const nn::TransformerConfig& mc) const override {
    return format("{}+{} layers", mc.encoder_layers, mc.decoder_layers);
  }
  ag::Variable logits(const data::Batch& b, uint64_t dropout_stream) const override {
    return model_->forward(b.src, b.src_lengths, b.tgt_in, b.tgt_lengths, dropout_stream);
  }
  void validate_more(const ValidationSet& set, const TrainOptions& o,
                     Validation& v) const override {
    if (!o.valid_bleu || set.sources.empty()) return;
    decode::TranslateOptions t;
    t.search.beam = o.valid_beam;
    t.search.alpha = o.valid_alpha;
    t.batch_tokens = o.valid_max_tokens;
    t.max_input_tokens = std::numeric_limits<int64_t>::max();  // validation cuts nothing
    const auto outs =
        decode::Translator(*model_, *tokenizer_).translate(set.sources, t, "validation");
    std::vector<std::string> hyps;
    int64_t exact = 0;
    for (size_t i = 0; i < outs.size(); ++i) {
      hyps.push_back(outs[i][0].text);
      exact += hyps.back() == set.references[i];
    }
    v.bleu = eval::corpus_bleu(hyps, {set.references}).score;
    v.exact = static_cast<double>(exact) / static_cast<double>(std::max<size_t>(outs.size(), 1));
  }

 private:
  Corpus corpus_;
};

// ---------------------------------------------------------------- language models on text

// What the causal and the masked LM share: text read as training reads it, validated and
// selected by the loss.
class TextTask : public Task {
 public:
  explicit TextTask(nn::Arch arch) : arch_(arch) {}
  void check(const io::Config&, TrainOptions& o) const override { o.valid_bleu = false; }
  void read(const io::Config& c) override { text_ = load_lm_text(c, arch_); }
  std::vector<std::string> vocabulary_sentences(const io::Config& c) const override {
    if (c.get_string("vocab.type") == "char") return {};
    return data::split_lines(text_.train);
  }
  std::string vocabulary_text() const override { return text_.train; }

 protected:
  nn::Arch arch_;
  LmText text_;
};

class CausalLmTask : public Family<nn::DecoderOnly, TextTask> {
 public:
  CausalLmTask() : Family(nn::Arch::kDecoderOnly) {}
  void encode(const io::Config& c, const data::Tokenizer& tok, const nn::TransformerConfig& mc,
              std::vector<data::Example>& train, ValidationSet& valid) const override {
    const int64_t block = c.get_int("data.block");
    const int64_t stride =
        c.get_int("data.block_stride") > 0 ? c.get_int("data.block_stride") : block;
    ATTEND_CHECK(block >= 1 && block <= mc.max_positions,
                 "data.block: expected 1..model.max_positions ({}), got {}", mc.max_positions,
                 block);
    ATTEND_CHECK(c.get_int("data.block_stride") >= 0, "data.block_stride: expected >= 0, got {}",
                 c.get_int("data.block_stride"));
    const std::vector<int32_t> train_ids = data::lm_stream(tok, text_.train);
    const std::vector<int32_t> valid_ids = data::lm_stream(tok, text_.valid);
    train = data::lm_windows(train_ids, block, stride);
    valid.examples = data::lm_windows(valid_ids, block, block);
    std::printf(
        "data: %zu training tokens in %zu windows of %lld (stride %lld), %zu validation "
        "tokens in %zu windows\n",
        train_ids.size(), train.size(), static_cast<long long>(block),
        static_cast<long long>(stride), valid_ids.size(), valid.examples.size());
    ATTEND_CHECK(!train.empty(), "data.train_text: too little text for one training window");
  }
  std::string describe(const nn::TransformerConfig& mc) const override {
    return format("decoder-only, {} layers", mc.decoder_layers);
  }
  ag::Variable logits(const data::Batch& b, uint64_t dropout_stream) const override {
    return model_->forward(b.tgt_in, b.tgt_lengths, dropout_stream);
  }
};

class MaskedLmTask : public Family<nn::EncoderOnly, TextTask> {
 public:
  MaskedLmTask() : Family(nn::Arch::kEncoderOnly) {}
  void check(const io::Config& c, TrainOptions& o) const override {
    ATTEND_CHECK(c.get_string("vocab.type") != "char",
                 "vocab.type char: masked-LM training (model.arch encoder_only) needs a subword "
                 "vocabulary (bpe or unigram), which holds the {} piece",
                 data::kMaskPiece);
    TextTask::check(c, o);
  }
  bool needs_mask() const override { return true; }
  void encode(const io::Config&, const data::Tokenizer& tok, const nn::TransformerConfig& mc,
              std::vector<data::Example>& train, ValidationSet& valid) const override {
    // One sentence per line: BOS ids EOS, cut to the model's positions.
    train = data::mlm_sentences(tok, text_.train, mc.max_positions);
    valid.examples = data::mlm_sentences(tok, text_.valid, mc.max_positions);
    std::printf(
        "data: %zu training sentences, %zu validation sentences (masked-LM: 15%% of the "
        "tokens chosen, 80%% of those masked, 10%% random, 10%% kept)\n",
        train.size(), valid.examples.size());
    ATTEND_CHECK(!train.empty(), "data.train_text: no sentences");
  }
  std::string describe(const nn::TransformerConfig& mc) const override {
    return format("encoder-only, {} layers", mc.encoder_layers);
  }
  void bind(nn::Model& model, const data::Tokenizer& tok) override {
    Family::bind(model, tok);
    rule_ = data::mask_rule(tok, model.config().src_vocab);
    ATTEND_CHECK(rule_.mask_id >= 0,
                 "model.arch encoder_only: the vocabulary has no {} piece (train one with "
                 "attend train, which adds it, or give a SentencePiece model that has it)",
                 data::kMaskPiece);
  }
  ag::Variable logits(const data::Batch& b, uint64_t dropout_stream) const override {
    return model_->forward(b.tgt_in, b.tgt_lengths, dropout_stream);
  }
  // The corruption of a micro-batch is a function of (seed, stream): resume is exact.
  const data::Batch& prepare(const data::Batch& b, uint64_t seed, uint64_t stream,
                             data::Batch& scratch) const override {
    scratch = data::mask_batch(b, rule_, seed ^ kMaskSeed, stream);
    return scratch;
  }
  data::Batch validation_batch(data::Batch b, uint64_t seed, int64_t k) const override {
    return data::mask_batch(b, rule_, seed ^ kMaskSeed ^ 1, static_cast<uint64_t>(k));
  }
  int64_t correct(const Tensor& logits, const data::Batch& b) const override {
    return decode::count_correct(logits, b.tgt_out, data::kIgnore);
  }

 private:
  static constexpr uint64_t kMaskSeed = 0x6d61736b;  // the masking draws' key, beside dropout's
  data::MaskRule rule_;
};

}  // namespace

std::unique_ptr<Task> Task::make(nn::Arch arch) {
  switch (arch) {
    case nn::Arch::kEncoderDecoder:
      return std::make_unique<TranslationTask>();
    case nn::Arch::kDecoderOnly:
      return std::make_unique<CausalLmTask>();
    case nn::Arch::kEncoderOnly:
      return std::make_unique<MaskedLmTask>();
  }
  ATTEND_FAIL("train: model.arch {} cannot be trained", nn::arch_name(arch));
}

void Task::write_files(const io::Config&, const std::string&) const {}

void Task::bind(nn::Model& model, const data::Tokenizer& tok) {
  model_ = &model;
  tokenizer_ = &tok;
}

const data::Batch& Task::prepare(const data::Batch& b, uint64_t, uint64_t, data::Batch&) const {
  return b;
}

data::Batch Task::validation_batch(data::Batch b, uint64_t, int64_t) const { return b; }

int64_t Task::correct(const Tensor&, const data::Batch&) const { return -1; }

void Task::validate_more(const ValidationSet&, const TrainOptions&, Validation&) const {}

}  // namespace attend::train
