// `attend train`: reads (or generates) the corpus, trains or loads the SentencePiece model,
// builds the Transformer from the config, and runs the training loop -- token-based batches
// from a background thread, label-smoothed loss, gradient accumulation and clipping, Adam
// with the paper's schedule, progress line + train.jsonl, validation (loss, greedy BLEU,
// exact match) with best-model keeping and early stopping, periodic atomic checkpoints,
// exact resume, and a checkpoint on SIGINT/SIGTERM.
#pragma once
#include <string>
#include <vector>

#include "io/config.h"

namespace attend::train {

struct TrainResult {
  int64_t steps = 0;
  double last_loss = 0;
  bool has_best = false;
  double best_metric = 0;
  bool interrupted = false;  // stopped by SIGINT/SIGTERM (a checkpoint was saved)
};

/// Trains with `config`; when `resume` the run continues from train.out's last checkpoint
/// (whose state, weights and optimizer moments are loaded).
TrainResult train(const io::Config& config, bool resume);

}  // namespace attend::train
