// The documented keys of `attend train` (configs/*.yaml, overridable as --section.key value;
// the model.* keys come from models/config.h), and the train.* keys as typed options, read and
// checked once.
#pragma once
#include <cstdint>
#include <string>

#include "core/types.h"
#include "io/config.h"
#include "train/schedule.h"

namespace attend::train {

/// Every training key with its type, default and documentation.
io::Config train_config();

enum class ValidMetric { kBleu, kLoss };

/// The train.* keys, typed. from_config reads each once; every error names its key.
struct TrainOptions {
  std::string out;  // run directory
  bool overwrite = false;
  uint64_t seed = 1;
  int threads = 0;  // 0: leave the worker count as it is
  // batches and stopping
  int64_t max_tokens = 4096, accumulate = 1, max_steps = 100000, max_epochs = 0;
  double bucket_mb = 25;  // data-parallel all-reduce bucket size
  double max_minutes = 0;
  // optimisation
  ScheduleKind schedule = ScheduleKind::kNoam;
  double lr = 1.0;
  int64_t warmup = 4000;
  double adam_beta1 = 0.9, adam_beta2 = 0.98, adam_eps = 1e-9, weight_decay = 0;
  double label_smoothing = 0.1, clip_norm = 0, ema_decay = 0;
  // precision of the matrix products in forward and backward: kF32 or kBF16 (mixed precision:
  // bf16 operands, f32 sums; weights, gradients, optimizer state and every other op stay f32)
  DType precision = DType::kF32;
  Device device = Device::cpu();  // where the model, its gradients and Adam's moments live
  // progress, checkpoints, validation
  int64_t log_every = 50, save_every = 1000, keep_checkpoints = 20, valid_every = 1000;
  bool valid_bleu = true;
  int64_t valid_beam = 4;
  double valid_alpha = 0.6;
  ValidMetric valid_metric = ValidMetric::kBleu;
  int64_t patience = 0, valid_max_tokens = 2000;

  static TrainOptions from_config(const io::Config& c);
  /// The metric that selects the best model is BLEU (and BLEU is computed).
  bool select_by_bleu() const { return valid_metric == ValidMetric::kBleu && valid_bleu; }
};

}  // namespace attend::train
