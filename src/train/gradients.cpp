// GradientBuffer (see gradients.h).
#include "train/gradients.h"

#include <cmath>

#include "core/allocator.h"
#include "core/error.h"
#include "ops/ops.h"

namespace attend::train {

GradientBuffer::GradientBuffer(std::vector<std::pair<std::string, ag::Variable>> params)
    : params_(std::move(params)) {
  ATTEND_CHECK(!params_.empty(), "GradientBuffer: no parameters");
  const Tensor& first = params_.front().second.value();
  int64_t total = 0;
  for (const auto& [name, v] : params_) {
    ATTEND_CHECK(v.requires_grad(), "GradientBuffer: parameter '{}' does not require a gradient",
                 name);
    ATTEND_CHECK(v.value().dtype() == first.dtype() && v.value().device() == first.device(),
                 "GradientBuffer: parameter '{}' is {} on {}, the first one {} on {}", name,
                 dtype_name(v.value().dtype()), v.value().device().str(), dtype_name(first.dtype()),
                 first.device().str());
    offsets_.push_back(total);
    total += v.value().numel();
  }
  HeapScope heap;  // gradients outlive every per-step arena
  flat_ = Tensor::zeros({total}, first.dtype(), first.device());
  for (size_t i = 0; i < params_.size(); ++i) {
    const ag::Variable& v = params_[i].second;
    views_.push_back(
        flat_.slice(0, offsets_[i], offsets_[i] + v.value().numel()).reshape(v.value().shape()));
    v.set_grad(views_.back());
  }
}

GradientBuffer::~GradientBuffer() {
  for (const auto& [name, v] : params_) {  // parameters may outlive the buffer
    v.set_grad_ready_hook(nullptr);
    v.clear_grad();
  }
}

void GradientBuffer::zero() { flat_.zero_(); }

double GradientBuffer::scale_and_clip(double scale, double clip) {
  ops::scale_(flat_, scale);
  double sq = 0;
  for (const Tensor& g : views_) sq += ops::sum_squares(g);
  const double norm = std::sqrt(sq);
  if (clip > 0 && norm > clip) ops::scale_(flat_, clip / norm);
  return norm;
}

void GradientBuffer::on_ready(std::function<void(size_t)> ready) {
  for (size_t i = 0; i < params_.size(); ++i) {
    if (!ready) {
      params_[i].second.set_grad_ready_hook(nullptr);
      continue;
    }
    params_[i].second.set_grad_ready_hook([ready, i] { ready(i); });
  }
}

}  // namespace attend::train
