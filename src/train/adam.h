// Adam(W) over a module's parameters: first and second moments kept per parameter (f32, heap),
// one fused update kernel per tensor. Bias-corrected; decoupled weight decay when set.
#pragma once
#include <vector>

#include "nn/module.h"
#include "ops/ops.h"

namespace attend::train {

class Adam {
 public:
  Adam(std::vector<std::pair<std::string, ag::Variable>> params, const ops::AdamConfig& config);
  /// Applies one update with the gradients accumulated so far (step counter += 1).
  void step();
  void set_lr(double lr) { config_.lr = lr; }
  double lr() const { return config_.lr; }
  int64_t steps() const { return step_; }
  const ops::AdamConfig& config() const { return config_; }
  /// Moments and step count, for checkpoints: state()[i] = (name, m, v) in parameter order.
  struct Moment {
    const std::string& name;
    Tensor& m;
    Tensor& v;
  };
  std::vector<Moment> state();
  void set_steps(int64_t step) { step_ = step; }

 private:
  std::vector<std::pair<std::string, ag::Variable>> params_;
  std::vector<Tensor> m_, v_;
  ops::AdamConfig config_;
  int64_t step_ = 0;
};

}  // namespace attend::train
