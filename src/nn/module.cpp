// Module tree and parameter initialisation.
#include "nn/module.h"

#include "autograd/functions.h"
#include "core/rng.h"
#include "ops/ops.h"

namespace attend::nn {

std::vector<std::pair<std::string, ag::Variable>> Module::named_parameters() const {
  std::vector<std::pair<std::string, ag::Variable>> out = params_;
  for (const auto& [name, child] : children_)
    for (auto& [pname, var] : child->named_parameters()) out.emplace_back(name + "." + pname, var);
  return out;
}

void Module::zero_grad() const {
  for (const auto& [name, v] : named_parameters()) v.zero_grad();
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (const auto& [name, v] : named_parameters()) n += v.value().numel();
  return n;
}

void Module::to(Device device, DType dtype) {
  ATTEND_CHECK(is_floating(dtype),
               "Module::to: the compute dtype must be f32, f64, bf16 or f16, got {}",
               dtype_name(dtype));
  if (!(device == device_)) {
    HeapScope heap;  // parameters outlive every arena
    for (auto& [name, v] : params_) {
      v.mutable_value() = v.value().to(device);
      if (v.grad().defined()) v.set_grad(v.grad().to(device));
    }
    for (ag::Variable& c : constants_) c.mutable_value() = c.value().to(device);
  }
  device_ = device;
  compute_dtype_ = dtype;
  for (auto& [name, child] : children_) child->to(device, dtype);
}

ag::Variable Module::compute(const ag::Variable& p) const {
  if (!p.defined() || p.value().dtype() == compute_dtype_) return p;
  if (weight_dtype_ != DType::kF32 && p.value().dtype() == weight_dtype_) return p;  // stored
  return ag::cast(p, compute_dtype_);
}

void Module::store_weights(DType dtype) {
  if (dtype == DType::kF32) return;
  ATTEND_CHECK(dtype == DType::kBF16 || dtype == DType::kI8,
               "store_weights: weights are stored in f32, bf16 or int8, not {}", dtype_name(dtype));
  ATTEND_CHECK(weight_dtype_ == DType::kF32 || weight_dtype_ == dtype,
               "store_weights: the weights are already stored in {}",
               weight_dtype_ == DType::kI8 ? "int8" : dtype_name(weight_dtype_));
  if (weight_dtype_ == dtype) return;
  ATTEND_CHECK(dtype != DType::kBF16 || ops::bf16_weights_supported(),
               "precision bf16: this CPU lacks AVX-512 (avx512f), which the bf16-weight kernels "
               "need; use --precision fp32 or int8");
  ATTEND_CHECK(device_.is_cpu() && compute_dtype_ == DType::kF32,
               "store_weights: {} weights are for f32 inference on the CPU", dtype_name(dtype));
  HeapScope heap;  // the weights outlive every arena
  store_own_weights(dtype);
  weight_dtype_ = dtype;
  training_ = false;
  for (auto& [name, child] : children_) child->store_weights(dtype);
}

void Module::store_own_weights(DType dtype) {
  if (dtype != DType::kBF16) return;
  for (auto& [name, v] : params_)
    if (v.value().dim() == 2 && v.value().dtype() == DType::kF32)
      v.mutable_value() = v.value().to(DType::kBF16);
}

void Module::set_training(bool training) {
  training_ = training;
  for (auto& [name, child] : children_) child->set_training(training);
}

ag::Variable Module::register_parameter(const std::string& name, Tensor value) {
  ag::Variable v(std::move(value), true, name);
  params_.emplace_back(name, v);
  return v;
}

ag::Variable Module::register_constant(ag::Variable constant) {
  constants_.push_back(constant);
  return constant;
}

void Module::register_module(const std::string& name, Module& child) {
  children_.emplace_back(name, &child);
}

namespace {

// Writes values computed in double into t (f32 or f64), converting as static_cast does.
void fill_from(Tensor& t, const std::vector<double>& values) {
  t.copy_from(Tensor::from_vector(values, t.shape()).to(t.dtype()));
}

}  // namespace

void init_uniform(Tensor& t, double bound, uint64_t seed, uint64_t stream) {
  std::vector<double> v(static_cast<size_t>(t.numel()));
  for (size_t i = 0; i < v.size(); ++i)
    v[i] = (2.0 * philox_uniform(seed, stream, static_cast<uint64_t>(i)) - 1.0) * bound;
  fill_from(t, v);
}

void init_normal(Tensor& t, double std, uint64_t seed, uint64_t stream) {
  std::vector<double> v(static_cast<size_t>(t.numel()));
  for (size_t i = 0; i < v.size(); ++i)
    v[i] = std * philox_normal(seed, stream, static_cast<uint64_t>(i));
  fill_from(t, v);
}

uint64_t name_stream(const std::string& name) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : name) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

}  // namespace attend::nn
