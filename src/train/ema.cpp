// Exponential moving average of the weights (see ema.h).
#include "train/ema.h"

#include <algorithm>

#include "core/allocator.h"
#include "ops/ops.h"

namespace attend::train {

Ema::Ema(std::vector<std::pair<std::string, ag::Variable>> params, double decay)
    : params_(std::move(params)), decay_(decay) {
  ATTEND_CHECK(decay >= 0 && decay < 1, "ema: the decay must lie in [0, 1), got {}", decay);
  HeapScope heap;
  for (const auto& [name, v] : params_) avg_.push_back(v.value().clone());
}

double Ema::decay_at(int64_t step) const {
  const double t = static_cast<double>(step);
  return std::min(decay_, (1.0 + t) / (10.0 + t));
}

void Ema::update(int64_t step) {
  const double d = decay_at(step);
  HeapScope heap;
  for (size_t i = 0; i < params_.size(); ++i) {
    // avg += (1 - d) * (w - avg): one rounding of the (small) correction, not of two products.
    ops::accumulate_(avg_[i], ops::affine(ops::sub(params_[i].second.value(), avg_[i]), 1.0 - d));
  }
}

void Ema::swap() {
  HeapScope heap;
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor& w = params_[i].second.mutable_value();
    const Tensor raw = w.clone();
    w.copy_from(avg_[i]);
    avg_[i].copy_from(raw);
  }
}

std::vector<std::pair<std::string, Tensor>> Ema::named() const {
  std::vector<std::pair<std::string, Tensor>> out;
  for (size_t i = 0; i < params_.size(); ++i) out.emplace_back(params_[i].first, avg_[i]);
  return out;
}

}  // namespace attend::train
