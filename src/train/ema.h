// Exponential moving average of the weights ("exponential smoothing"): after each optimizer
// step t, ema <- d_t * ema + (1 - d_t) * weights, with d_t = min(decay, (1 + t) / (10 + t)) so
// that the average follows the weights closely in the first steps, when they move fast. The
// averaged weights are what validation decodes with and what checkpoints offer for inference;
// the optimizer keeps training the raw weights. decay 0.999 averages over roughly the last
// 1,000 steps (the weight of a step falls to 1/e after 1 / (1 - decay) steps).
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "nn/module.h"

namespace attend::train {

class Ema {
 public:
  /// Starts the average at the parameters' current values. decay in [0, 1).
  Ema(std::vector<std::pair<std::string, ag::Variable>> params, double decay);

  /// The decay applied after optimizer step `step` (1-based).
  double decay_at(int64_t step) const;
  /// Folds the current weights in, after optimizer step `step`.
  void update(int64_t step);
  /// Exchanges the averaged and the raw weights in the model (call again to undo); used to
  /// validate and save with the averaged weights.
  void swap();
  /// The averaged weights by parameter name (the raw ones while swapped): handles to the
  /// average's own storage, which a resume loads into (train::load_ema).
  std::vector<std::pair<std::string, Tensor>> named() const;
  double decay() const { return decay_; }

 private:
  std::vector<std::pair<std::string, ag::Variable>> params_;
  std::vector<Tensor> avg_;
  double decay_;
};

}  // namespace attend::train
