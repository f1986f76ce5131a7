// Module: a node of the model tree holding named parameters (leaf Variables) and child modules.
// Parameter names are dotted paths identical to the PyTorch reference implementation
// (e.g. "encoder.layers.0.self_attn.q_proj.weight"), so checkpoints map one-to-one.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "autograd/tape.h"

namespace attend::nn {

class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  /// Every parameter of this module and its children, depth-first, with dotted names.
  std::vector<std::pair<std::string, ag::Variable>> named_parameters() const;
  /// Zeroes (allocating on first use) every parameter gradient.
  void zero_grad() const;
  int64_t num_parameters() const;

  /// Moves every parameter (and its gradient) and constant to `device` and makes this module and
  /// its children compute in `dtype` (f32, f64, bf16 or f16). Parameters stay master weights in
  /// their own dtype (f32), and so do the optimizer's moments and the gradients: each forward
  /// casts a parameter to the compute dtype (ag::cast), and its gradient comes back cast to
  /// the parameter's dtype. Call it before building the optimizer. An op without a kernel
  /// for the device or dtype fails on first use, naming the op, device and dtype.
  void to(Device device, DType dtype = DType::kF32);
  Device device() const { return device_; }
  DType compute_dtype() const { return compute_dtype_; }
  /// A parameter (or constant) as this module computes with it: `p` itself, or `p` cast to the
  /// compute dtype (a weight stored by store_weights is used as stored). Undefined stays
  /// undefined.
  ag::Variable compute(const ag::Variable& p) const;
  /// Inference with the weights stored in `dtype` (kF32 changes nothing):
  /// - kBF16: every matrix parameter of this module and its children (linear weights,
  ///   embedding and position tables) is converted once, in place; biases, layer norms,
  ///   activations and arithmetic stay f32 (the products widen the weights as they read them,
  ///   ops::linear). Halves the bytes a decoding step streams. Needs AVX-512 (an error naming
  ///   the missing feature otherwise).
  /// - kI8: every linear layer's weight is quantized per output row (ops::quantize_rows: i8
  ///   values, and a parameter "weight_scale" f32 [out] beside it) and its products run in
  ///   int8 (ops::linear_int8); embeddings, position tables, a shared output projection,
  ///   biases and layer norms stay f32. A quarter of the bytes per linear layer.
  /// The model can no longer train; its parameters (named_parameters) are what a quantized
  /// model directory holds (attend quantize).
  void store_weights(DType dtype);
  DType weight_dtype() const { return weight_dtype_; }

  /// Training mode enables dropout.
  void set_training(bool training);
  bool training() const { return training_; }

 protected:
  /// This module's own part of store_weights (children excluded): bf16 converts its matrices;
  /// int8 changes nothing here (Linear overrides it).
  virtual void store_own_weights(DType dtype);
  ag::Variable register_parameter(const std::string& name, Tensor value);
  /// A constant this module computes with (a position table): not a parameter (not trained,
  /// not in checkpoints), but moved with the parameters by to(). Returns it; copies of the
  /// Variable share its node, so every holder sees the move.
  ag::Variable register_constant(ag::Variable constant);
  void register_module(const std::string& name, Module& child);

 private:
  std::vector<std::pair<std::string, ag::Variable>> params_;
  std::vector<ag::Variable> constants_;
  std::vector<std::pair<std::string, Module*>> children_;
  bool training_ = true;
  Device device_ = Device::cpu();
  DType compute_dtype_ = DType::kF32;
  DType weight_dtype_ = DType::kF32;
};

/// A module that only groups children under a name prefix (e.g. "encoder").
class Container : public Module {
 public:
  void add(const std::string& name, Module& child) { register_module(name, child); }
};

/// Fills t (f32 or f64) with U(-bound, bound) from Philox(seed, stream).
void init_uniform(Tensor& t, double bound, uint64_t seed, uint64_t stream);
/// Fills t with N(0, std^2) from Philox(seed, stream).
void init_normal(Tensor& t, double std, uint64_t seed, uint64_t stream);
/// Stable 64-bit hash of a parameter name (FNV-1a), used as its initialisation stream.
uint64_t name_stream(const std::string& name);

}  // namespace attend::nn
