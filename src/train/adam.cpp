// Adam(W) optimizer.
#include "train/adam.h"

namespace attend::train {

Adam::Adam(std::vector<std::pair<std::string, ag::Variable>> params, const ops::AdamConfig& c)
    : params_(std::move(params)), config_(c) {
  HeapScope heap;
  for (const auto& [name, v] : params_) {
    m_.push_back(Tensor::zeros(v.value().shape(), v.value().dtype(), v.value().device()));
    v_.push_back(Tensor::zeros(v.value().shape(), v.value().dtype(), v.value().device()));
  }
}

std::vector<Adam::Moment> Adam::state() {
  std::vector<Moment> out;
  for (size_t i = 0; i < params_.size(); ++i) out.push_back({params_[i].first, m_[i], v_[i]});
  return out;
}

void Adam::step() {
  ++step_;
  for (size_t i = 0; i < params_.size(); ++i) {
    const ag::Variable& p = params_[i].second;
    ATTEND_CHECK(p.grad().defined(),
                 "adam: parameter '{}' has no gradient (call zero_grad() "
                 "before the forward pass)",
                 params_[i].first);
    ops::adam_update(p.mutable_value(), p.grad(), m_[i], v_[i], config_, step_);
  }
}

}  // namespace attend::train
