// The activation functions and their derivatives, one element at a time, for any floating type:
// the formulas the reference kernels (kernels/ref) loop over and the CUDA kernels (kernels/cuda)
// call per thread. The CPU f32 kernels evaluate the same formulas in vector registers
// (kernels/cpu), checked against these by the op table.
#pragma once
#include <cmath>

#include "core/host_device.h"

namespace attend::kernels::act {

// Unqualified calls after `using std::...`: the host takes std::'s overloads, device code
// CUDA's (float and double).
template <typename T>
ATTEND_HD inline T relu(T x) {
  return x > T(0) ? x : T(0);
}
template <typename T>
ATTEND_HD inline T relu_grad(T x, T dy) {
  return x > T(0) ? dy : T(0);
}

/// Exact GELU, x Phi(x) (PyTorch's default).
template <typename T>
ATTEND_HD inline T gelu(T x) {
  using std::erf;
  return T(0.5) * x * (T(1) + erf(x * T(0.7071067811865476)));
}
template <typename T>
ATTEND_HD inline T gelu_grad(T x, T dy) {
  using std::erf;
  using std::exp;
  const T cdf = T(0.5) * (T(1) + erf(x * T(0.7071067811865476)));
  const T pdf = T(0.3989422804014327) * exp(T(-0.5) * x * x);
  return dy * (cdf + x * pdf);
}

/// GELU's tanh form (GPT-2's "gelu_new"): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
template <typename T>
ATTEND_HD inline T gelu_tanh(T x) {
  using std::tanh;
  const T c = T(0.7978845608028654), a = T(0.044715);
  return T(0.5) * x * (T(1) + tanh(c * (x + a * x * x * x)));
}
template <typename T>
ATTEND_HD inline T gelu_tanh_grad(T x, T dy) {
  using std::tanh;
  const T c = T(0.7978845608028654), a = T(0.044715);
  const T t = tanh(c * (x + a * x * x * x));
  return dy * (T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * c * (T(1) + T(3) * a * x * x));
}

/// SiLU (Marian's "swish"): x sigmoid(x); its derivative is s (1 + x (1 - s)), s = sigmoid(x).
template <typename T>
ATTEND_HD inline T silu(T x) {
  using std::exp;
  return x / (T(1) + exp(-x));
}
template <typename T>
ATTEND_HD inline T silu_grad(T x, T dy) {
  using std::exp;
  const T s = T(1) / (T(1) + exp(-x));
  return dy * s * (T(1) + x * (T(1) - s));
}

}  // namespace attend::kernels::act
