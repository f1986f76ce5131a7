// Learning-rate schedules. "noam" is the paper's: lr = scale * d_model^-0.5 *
// min(step^-0.5, step * warmup^-1.5); "inverse_sqrt" reaches `peak` at step `warmup` and decays
// as 1/sqrt(step) (the same curve, parameterised by its peak); "constant" returns `peak`
// after a linear warm-up.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

#include "core/error.h"

namespace attend::train {

struct Schedule {
  std::string kind = "noam";  // noam | inverse_sqrt | constant
  double lr = 1.0;            // noam: the scale factor; otherwise the peak learning rate
  int64_t warmup = 4000;
  int64_t d_model = 512;

  double at(int64_t step) const {
    const double s = static_cast<double>(std::max<int64_t>(step, 1));
    const double w = static_cast<double>(std::max<int64_t>(warmup, 1));
    if (kind == "noam")
      return lr * std::pow(static_cast<double>(d_model), -0.5) * std::min(1.0 / std::sqrt(s), s * std::pow(w, -1.5));
    if (kind == "inverse_sqrt") return lr * std::min(s / w, std::sqrt(w / s));
    if (kind == "constant") return lr * std::min(1.0, s / w);
    ATTEND_FAIL("train.schedule: expected noam, inverse_sqrt or constant, got '{}'", kind);
  }
};

}  // namespace attend::train
