// Ops: masked softmax, log-softmax, logsumexp and their backward. Validation, allocation and the
// (device, dtype) dispatch; declared in ops.h.
#include <cmath>
#include <vector>

#include "ops/dispatch.h"

namespace attend::ops {
using namespace detail;

Tensor softmax(const Tensor& x_in, const AttentionMask& mask) {
  constexpr std::string_view op = "softmax";
  check_float(op, "x", x_in);
  ATTEND_CHECK(x_in.dim() >= 1, "softmax: expected at least 1 dimension, got {}",
               shape_str(x_in.shape()));
  const bool masked = mask.key_lengths.defined() || mask.causal || mask.local;
  kernels::AttnDims d;
  if (masked) {
    ATTEND_CHECK(x_in.dim() == 4, "softmax: a masked softmax expects scores [B, H, Tq, Tk], got {}",
                 shape_str(x_in.shape()));
    d = {x_in.size(0), x_in.size(1), x_in.size(2), x_in.size(3), 1};
    check_mask(op, mask, d.B, d.Tk);
  } else {
    d = {1, 1, rows_of(x_in), cols_of(x_in), 1};
  }
  const Tensor x = x_in.contiguous();
  Tensor y = like(x);
  const kernels::Mask km = to_kernel_mask(mask);
  if (cpu_path(op, x) == Path::kCpuF32)
    cpu::softmax(x.data<float>(), y.data<float>(), d, km);
  else
    ref::softmax(x.data<double>(), y.data<double>(), d, km);
  return y;
}

Tensor softmax_backward(const Tensor& y, const Tensor& dy) {
  return backward_cpu(
      "softmax_backward", y, dy,
      [](const float* a, const float* g, float* d, const Tensor& t) {
        cpu::softmax_backward(a, g, d, rows_of(t), cols_of(t));
      },
      [](const double* a, const double* g, double* d, const Tensor& t) {
        ref::softmax_backward(a, g, d, rows_of(t), cols_of(t));
      });
}

Tensor log_softmax(const Tensor& x) {
  return unary_cpu(
      "log_softmax", x,
      [](const float* a, float* y, const Tensor& t) {
        cpu::log_softmax(a, y, rows_of(t), cols_of(t));
      },
      [](const double* a, double* y, const Tensor& t) {
        ref::log_softmax(a, y, rows_of(t), cols_of(t));
      });
}

Tensor logsumexp(const Tensor& x_in) {
  constexpr std::string_view op = "logsumexp";
  check_float(op, "x", x_in);
  ATTEND_CHECK(x_in.dim() >= 1 && x_in.size(-1) > 0,
               "logsumexp: x must have a non-empty last dimension, got {}",
               shape_str(x_in.shape()));
  return reduce_last_cpu(
      op, x_in, [](const float* a, float* y, int64_t r, int64_t c) { cpu::logsumexp(a, y, r, c); },
      [](const double* a, double* y, int64_t r, int64_t c) { ref::logsumexp(a, y, r, c); });
}

Tensor log_softmax_backward(const Tensor& y, const Tensor& dy) {
  return backward_cpu(
      "log_softmax_backward", y, dy,
      [](const float* a, const float* g, float* d, const Tensor& t) {
        cpu::log_softmax_backward(a, g, d, rows_of(t), cols_of(t));
      },
      [](const double* a, const double* g, double* d, const Tensor& t) {
        ref::log_softmax_backward(a, g, d, rows_of(t), cols_of(t));
      });
}

}  // namespace attend::ops
