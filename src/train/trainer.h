// Training a Transformer: the encoder-decoder on sentence pairs, the decoder-only language model
// on windows of text (data::Layout::kWindow), the encoder-only model by masked-token prediction
// on sentences (data::Layout::kSequence, corrupted by data::mask_batch each step). What differs
// between the families lives in their train::Task (task.h); nothing here branches on one.
//
// Trainer is one model's training state -- Adam, the optional moving average, the flat gradient
// buffer, the step counter and data position -- with step() (forward and backward over the
// micro-batches of one optimizer step, then scale, clip and update), validate() and save().
// It reads no files and prints nothing, so that a data-parallel driver or a test can run it.
//
// train() is `attend train`: it reads (or generates) the corpus, trains or loads the
// SentencePiece model, builds the model from the config, and drives a Trainer -- token-based
// batches from a background thread, progress line + train.jsonl, validation with best-model
// keeping and early stopping, periodic atomic checkpoints, exact resume, and a checkpoint on
// SIGINT/SIGTERM.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/allocator.h"
#include "data/batcher.h"
#include "data/tokenizer.h"
#include "dist/communicator.h"
#include "dist/reducer.h"
#include "io/config.h"
#include "nn/transformer.h"
#include "train/adam.h"
#include "train/checkpoint.h"
#include "train/ema.h"
#include "train/gradients.h"
#include "train/options.h"
#include "train/task.h"

namespace attend::train {

struct StepResult {
  double loss = 0;       // summed token loss / tokens
  int64_t tokens = 0;    // the target tokens the loss was normalised by
  double grad_norm = 0;  // global gradient norm before clipping
  double lr = 0;         // the learning rate this step used
};

class Trainer {
 public:
  /// Trains `model` (which must outlive the Trainer) with `options`. `tokenizer` is the model's
  /// vocabulary (validation decodes with it; checkpoints store it). With a communicator of
  /// more than one rank (data parallel), the parameters are broadcast from rank 0 and every
  /// step sums the gradients over the ranks (in buckets of train.bucket_mb, overlapping the
  /// last micro-batch's backward).
  /// `model` is an nn::EncoderDecoder, nn::DecoderOnly or nn::EncoderOnly (whose vocabulary
  /// must have the mask piece).
  Trainer(nn::Model& model, const data::Tokenizer& tokenizer, const TrainOptions& options,
          dist::Communicator* comm = nullptr);
  ~Trainer();

  /// Continues from checkpoint `dir`: state, training weights, optimizer moments and, when the
  /// checkpoint has one and train.ema_decay is set, the moving average.
  void resume(const std::string& dir);

  /// One optimizer step over `batches` (gradient accumulation): each one's label-smoothed
  /// summed token loss is backpropagated, the summed gradients are divided by `tokens` (0: the
  /// batches' own target-token count; data-parallel ranks pass the count over all ranks),
  /// clipped to train.clip_norm, and Adam updates the weights with the schedule's rate.
  /// Data parallel: every rank calls it with its own batches and the global token count; the
  /// gradients, the reported loss and token counts are sums over the ranks, so every rank
  /// makes the same update. Micro-batch a of rank r draws dropout as micro-batch
  /// r * batches.size() + a of one process would.
  StepResult step(const std::vector<const data::Batch*>& batches, int64_t tokens = 0);

  /// Loss and perplexity on `set` and, with train.valid_bleu (encoder-decoder only), the BLEU
  /// and exact-match rate of its beam-search translations. Uses the moving average when there
  /// is one.
  Validation validate(const ValidationSet& set);

  /// Writes a checkpoint to `dir` (atomically): weights, optimizer moments when
  /// `with_optimizer`, `config_json`, the tokenizer and state().
  void save(const std::string& dir, const std::string& config_json, bool with_optimizer);

  TrainerState& state() { return state_; }
  const TrainerState& state() const { return state_; }
  GradientBuffer& gradients() { return gradients_; }
  const Adam& optimizer() const { return adam_; }
  const Ema* ema() const { return ema_.get(); }
  const TrainOptions& options() const { return options_; }
  /// How the model frames a translation pair's target (its bos and eos ids).
  data::Frame frame() const { return {model_.config().bos_id, model_.config().eos_id}; }
  /// The data-parallel reducer (null in a single process): bucket count, time communicating.
  const dist::GradientReducer* reducer() const { return reducer_.get(); }

 private:
  void broadcast_parameters();
  nn::Model& model_;
  const data::Tokenizer& tokenizer_;
  TrainOptions options_;
  Schedule schedule_;
  GradientBuffer gradients_;
  Adam adam_;
  std::unique_ptr<Ema> ema_;
  TrainerState state_;
  Arena arena_;                         // every activation of a step comes from here
  dist::Communicator* comm_ = nullptr;  // set when more than one rank
  std::unique_ptr<dist::GradientReducer> reducer_;
  std::unique_ptr<Task> task_;  // the model family's forward, batches and validation
};

struct TrainResult {
  int64_t steps = 0;
  double last_loss = 0;
  bool has_best = false;
  double best_metric = 0;
  std::string best_metric_name;  // "bleu" or "loss": what selected the best model
  bool interrupted = false;      // stopped by SIGINT/SIGTERM (a checkpoint was saved)
  bool stopped = false;          // stopped by the RecordHook (a checkpoint was saved)
};

/// The configuration a run trains with: the defaults, then `apply` (a YAML file, then keys given
/// on the command line or from Python); when `resume`, train.out's last checkpoint's config.json
/// first, then `apply` again, so that keys given now override the checkpoint's. `flag` names
/// resuming in the error for a train.out without a checkpoint ("--resume", "resume").
io::Config run_config(const std::function<void(io::Config&)>& apply, bool resume,
                      const std::string& flag);

/// Called with every record train.jsonl gets (a JSON object: progress every train.log_every
/// steps, or a validation), after it is written; returning false stops training as a signal
/// does, with a checkpoint, and train() returns with `stopped`. (The Python API's on_step and
/// on_validation.)
using RecordHook = std::function<bool(const std::string& record)>;

/// Trains with `config`; when `resume` the run continues from train.out's last checkpoint
/// (whose state, weights and optimizer moments are loaded).
TrainResult train(const io::Config& config, bool resume, const RecordHook& on_record = {});

}  // namespace attend::train
