// Learning-rate schedules. "noam" is the paper's: lr = scale * d_model^-0.5 *
// min(step^-0.5, step * warmup^-1.5); "inverse_sqrt" reaches `peak` at step `warmup` and decays
// as 1/sqrt(step) (the same curve, parameterised by its peak); "constant" returns `peak`
// after a linear warm-up; "cosine" warms up linearly to `peak`, then follows half a cosine
// from `peak` down to peak / 10 at step `total` (train.max_steps) and stays there -- the
// schedule GPT-style language models are trained with, which anneals before the run ends.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

#include "core/error.h"

namespace attend::train {

enum class ScheduleKind { kNoam, kInverseSqrt, kConstant, kCosine };

/// The key train.schedule's value as a kind; throws naming the key for anything else.
inline ScheduleKind parse_schedule(const std::string& name) {
  if (name == "noam") return ScheduleKind::kNoam;
  if (name == "inverse_sqrt") return ScheduleKind::kInverseSqrt;
  if (name == "constant") return ScheduleKind::kConstant;
  if (name == "cosine") return ScheduleKind::kCosine;
  ATTEND_FAIL("train.schedule: expected noam, inverse_sqrt, constant or cosine, got '{}'", name);
}

struct Schedule {
  ScheduleKind kind = ScheduleKind::kNoam;
  double lr = 1.0;  // noam: the scale factor; otherwise the peak learning rate
  int64_t warmup = 4000;
  int64_t d_model = 512;
  int64_t total = 0;  // cosine: the step where the decay ends (train.max_steps)

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
      case ScheduleKind::kCosine: {
        if (s < w) return lr * s / w;
        const double span = std::max(static_cast<double>(total) - w, 1.0);
        const double t = std::min((s - w) / span, 1.0);
        constexpr double kFloor = 0.1, kPi = 3.14159265358979323846;
        return lr * (kFloor + (1.0 - kFloor) * 0.5 * (1.0 + std::cos(kPi * t)));
      }
    }
    ATTEND_FAIL("schedule: invalid kind {}", static_cast<int>(kind));
  }
};

}  // namespace attend::train
