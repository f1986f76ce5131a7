// One flat buffer for every parameter's gradient. Each parameter's gradient is a view of it (in
// parameter order, no padding), so backward accumulates in place into the buffer and the whole
// gradient can be zeroed, scaled or reduced across data-parallel ranks as one tensor. A hook per
// parameter reports when backward has finished that parameter's gradient -- the point where a
// data-parallel all-reduce of its part of the buffer can start.
#pragma once
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "nn/module.h"

namespace attend::train {

class GradientBuffer {
 public:
  /// Allocates the buffer (zeros) and binds every parameter's gradient to its view. All
  /// parameters must share one dtype and device (the f32 master weights).
  explicit GradientBuffer(std::vector<std::pair<std::string, ag::Variable>> params);
  GradientBuffer(const GradientBuffer&) = delete;
  GradientBuffer& operator=(const GradientBuffer&) = delete;
  ~GradientBuffer();

  /// The whole buffer, [numel()].
  Tensor& flat() { return flat_; }
  int64_t numel() const { return flat_.numel(); }
  size_t size() const { return params_.size(); }
  /// Parameter i's gradient (a view of flat()) and where it starts in flat().
  const Tensor& view(size_t i) const { return views_[i]; }
  int64_t offset(size_t i) const { return offsets_[i]; }
  const std::string& name(size_t i) const { return params_[i].first; }

  /// Zeroes the whole buffer.
  void zero();
  /// Multiplies every gradient by `scale`, then returns the global L2 norm (per-parameter sums
  /// of squares added in parameter order); when clip > 0 and the norm exceeds it, scales every
  /// gradient by clip / norm.
  double scale_and_clip(double scale, double clip);
  /// Runs ready(i) whenever a backward pass has finished parameter i's gradient (null: none).
  void on_ready(std::function<void(size_t)> ready);

 private:
  std::vector<std::pair<std::string, ag::Variable>> params_;
  Tensor flat_;
  std::vector<Tensor> views_;
  std::vector<int64_t> offsets_;
};

}  // namespace attend::train
