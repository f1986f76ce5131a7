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

enum class ScheduleKind { kNoam, kInverseSqrt, kConstant };

/// The key train.schedule's value as a kind; throws naming the key for anything else.
inline ScheduleKind parse_schedule(const std::string& name) {
  if (name == "noam") return ScheduleKind::kNoam;
  if (name == "inverse_sqrt") return ScheduleKind::kInverseSqrt;
  if (name == "constant") return ScheduleKind::kConstant;
  ATTEND_FAIL("train.schedule: expected noam, inverse_sqrt or constant, got '{}'", name);
}

struct Schedule {
  ScheduleKind kind = ScheduleKind::kNoam;
  double lr = 1.0;  // noam: the scale factor; otherwise the peak learning rate
  int64_t warmup = 4000;
  int64_t d_model = 512;

  double at(int64_t step) const {
    const double s = static_cast<double>(std::max<int64_t>(step, 1));
    const double w = static_cast<double>(std::max<int64_t>(warmup, 1));
    switch (kind) {
      case ScheduleKind::kNoam:
        return lr * std::pow(static_cast<double>(d_model), -0.5) *
               std::min(1.0 / std::sqrt(s), s * std::pow(w, -1.5));
      case ScheduleKind::kInverseSqrt:
        return lr * std::min(s / w, std::sqrt(w / s));
      case ScheduleKind::kConstant:
        return lr * std::min(1.0, s / w);
    }
    ATTEND_FAIL("schedule: invalid kind {}", static_cast<int>(kind));
  }
};

}  // namespace attend::train
