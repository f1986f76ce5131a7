// Checkpoints: a directory holding model.safetensors (parameter names as in the PyTorch
// reference), optimizer.safetensors (Adam moments), config.json (every training key),
// trainer_state.json (step, data position, best score, checksums of the other files) and
// tokenizer.model (SentencePiece). With an exponential moving average of the weights
// (train.ema_decay), model.safetensors holds the averaged weights -- the ones to translate
// and average with -- and train_weights.safetensors the raw weights the optimizer trains,
// for resuming. A checkpoint is written into "<dir>.tmp" and renamed into
// place, so a crash (even SIGKILL) leaves either the previous checkpoint or the complete new one.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/tokenizer.h"
#include "nn/transformer.h"
#include "train/adam.h"
#include "train/ema.h"

namespace attend::train {

struct TrainerState {
  int64_t step = 0;   // optimizer steps done
  int64_t epoch = 0;  // data position: the next batch is plan(epoch)[batch_index]
  int64_t batch_index = 0;
  int64_t target_tokens = 0;  // target tokens trained on so far
  double elapsed_seconds = 0;
  double best_metric = 0;  // best validation score so far (bleu: higher, loss: lower)
  bool has_best = false;
  int64_t bad_validations = 0;  // validations since the last improvement
  int64_t validations = 0;
  bool ema = false;  // model.safetensors is a moving average; train_weights.safetensors exists
  int64_t global_batches = 0;  // batches per optimizer step over all ranks (0: not recorded)
};

/// Writes a complete checkpoint to `dir` atomically. `adam` may be null (model only). With
/// `ema`, model.safetensors gets the averaged weights and, when `adam` is given, the model's
/// own weights go to train_weights.safetensors (state.ema is then recorded as true).
void save_checkpoint(const std::string& dir, const nn::Module& model, Adam* adam,
                     const std::string& config_json, const data::Tokenizer& tokenizer,
                     const TrainerState& state, const Ema* ema = nullptr);

std::string read_config_json(const std::string& dir);
/// Loads weights into `model`: names and shapes must match exactly (errors name the tensor).
void load_model(const std::string& dir, nn::Module& model);
/// Loads the weights training continues from: train_weights.safetensors when the checkpoint
/// keeps a moving average (load_state(dir).ema), else model.safetensors.
void load_training_weights(const std::string& dir, nn::Module& model);
/// The averaged weights of a checkpoint that keeps a moving average, into `ema`.
void load_ema(const std::string& dir, Ema& ema);
void load_optimizer(const std::string& dir, Adam& adam);
TrainerState load_state(const std::string& dir);

/// Averages the weights of several checkpoints (element-wise mean in double) into a model
/// directory `out` (model.safetensors; config.json and tokenizer.model of the last one). All
/// must hold the same tensor names and shapes (errors name the checkpoint and tensor).
void average_checkpoints(const std::vector<std::string>& dirs, const std::string& out);

}  // namespace attend::train
