// The family-specific part of training, behind one interface: a Task per model family --
// translation (encoder-decoder on sentence pairs), causal LM (decoder-only on windows of text)
// and masked LM (encoder-only on sentences, corrupted each step). It says where the data comes
// from and what a vocabulary is learned from, builds the examples and the model, gives a batch's
// logits, prepares each micro-batch (masked-LM corruption), and measures what validation reports
// beyond the loss (BLEU and exact match of translations, masked accuracy). The Trainer and
// `attend train` (trainer.h) hold no family branches: they ask the task.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "autograd/tape.h"
#include "data/batcher.h"
#include "data/tokenizer.h"
#include "io/config.h"
#include "nn/transformer.h"
#include "train/options.h"

namespace attend::train {

struct Validation {
  double loss = 0, ppl = 0, bleu = -1, exact = -1, seconds = 0;
  double accuracy = -1;  // masked-LM: share of the masked tokens predicted exactly
};

/// A validation set: encoded examples for the loss, and the raw sentences for BLEU.
struct ValidationSet {
  std::vector<data::Example> examples;
  std::vector<std::string> sources, references;
};

class Task {
 public:
  virtual ~Task() = default;
  /// The task of a model family (model.arch).
  static std::unique_ptr<Task> make(nn::Arch arch);

  // ---- setting up a run (attend train)
  /// Checks the config for the family (before any data is read) and adjusts the options it
  /// implies (a language model is validated and selected by its loss).
  virtual void check(const io::Config& c, TrainOptions& o) const = 0;
  /// Reads (or generates) the training and validation data; prints what it read.
  virtual void read(const io::Config& c) = 0;
  /// What a vocabulary is learned from: the sentences (one per line), and the text a character
  /// vocabulary takes as well.
  virtual std::vector<std::string> vocabulary_sentences(const io::Config& c) const = 0;
  virtual std::string vocabulary_text() const { return {}; }
  /// Whether the vocabulary needs data::kMaskPiece.
  virtual bool needs_mask() const { return false; }
  /// Files a run keeps beside its checkpoints (a generated held-out set, for inspection).
  virtual void write_files(const io::Config& c, const std::string& out) const;
  /// The training examples and the validation set; prints their counts.
  virtual void encode(const io::Config& c, const data::Tokenizer& tok,
                      const nn::TransformerConfig& mc, std::vector<data::Example>& train,
                      ValidationSet& valid) const = 0;
  virtual std::unique_ptr<nn::Model> make_model(const nn::TransformerConfig& mc,
                                                uint64_t seed) const = 0;
  /// "encoder-only, 6 layers" and the like, for the run's model line.
  virtual std::string describe(const nn::TransformerConfig& mc) const = 0;

  // ---- training and validating (Trainer)
  /// Binds the task to the model it trains (checks what the family needs of the vocabulary).
  virtual void bind(nn::Model& model, const data::Tokenizer& tok);
  /// The batch's logits [B * T, V]; row r predicts tgt_out[r].
  virtual ag::Variable logits(const data::Batch& b, uint64_t dropout_stream) const = 0;
  /// The micro-batch a step trains on: `b` itself, or (masked LM) its corruption for
  /// (seed, stream), made in `scratch`.
  virtual const data::Batch& prepare(const data::Batch& b, uint64_t seed, uint64_t stream,
                                     data::Batch& scratch) const;
  /// Validation batch k as the loss is measured on it (masked LM: the same corruption at every
  /// validation).
  virtual data::Batch validation_batch(data::Batch b, uint64_t seed, int64_t k) const;
  /// How many of the batch's targets the logits predict exactly (masked accuracy); -1: not
  /// measured.
  virtual int64_t correct(const Tensor& logits, const data::Batch& b) const;
  /// What validation reports beyond the loss, from the validation set itself (translation:
  /// BLEU and exact match of beam-search translations, with train.valid_beam/valid_alpha).
  virtual void validate_more(const ValidationSet& set, const TrainOptions& o, Validation& v) const;

 protected:
  nn::Model* model_ = nullptr;
  const data::Tokenizer* tokenizer_ = nullptr;
};

}  // namespace attend::train
