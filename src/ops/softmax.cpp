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
    check_mask(op, mask, d.B, d.Tk, x_in);
  } else {
    d = {1, 1, rows_of(x_in), cols_of(x_in), 1};
  }
  const Tensor x = x_in.contiguous();
  Tensor y = like(x);
  const kernels::Mask km = to_kernel_mask(mask);
  dispatch(op, x,
           {.cpu_f32 = [&] { cpu::softmax(x.data<float>(), y.data<float>(), d, km); },
            .cpu_f64 = [&] { ref::softmax(x.data<double>(), y.data<double>(), d, km); },
            .cuda_f32 = ATTEND_ON_CUDA(
                [&] { cuda::softmax(queue(x), x.data<float>(), y.data<float>(), d, km); })});
  return y;
}

namespace {
// dx = kernel(y, dy, rows, cols) row by row (y: the forward op's output).
template <typename F32, typename F64, typename Cuda>
Tensor rows_backward(std::string_view op, const Tensor& y_in, const Tensor& dy_in, F32 f32, F64 f64,
                     [[maybe_unused]] Cuda on_cuda) {
  // Named references, not a structured binding: clang 14 cannot capture one in a lambda.
  const BackwardOperands operands = backward_operands(op, y_in, dy_in);
  const Tensor &y = operands.saved, &dy = operands.dy, &dx = operands.dx;
  const int64_t R = rows_of(y), C = cols_of(y);
  dispatch(op, y,
           {.cpu_f32 = [&] { f32(y.data<float>(), dy.data<float>(), dx.data<float>(), R, C); },
            .cpu_f64 = [&] { f64(y.data<double>(), dy.data<double>(), dx.data<double>(), R, C); },
            .cuda_f32 = ATTEND_ON_CUDA([&] {
              on_cuda(queue(y), y.data<float>(), dy.data<float>(), dx.data<float>(), R, C);
            })});
  return dx;
}
}  // namespace

Tensor softmax_backward(const Tensor& y, const Tensor& dy) {
  return rows_backward("softmax_backward", y, dy, cpu::softmax_backward,
                       ref::softmax_backward<double>, ATTEND_CUDA_ONLY(cuda::softmax_backward));
}

Tensor log_softmax(const Tensor& x_in) {
  constexpr std::string_view op = "log_softmax";
  check_float(op, "x", x_in);
  const Tensor x = x_in.contiguous();
  Tensor y = like(x);
  const int64_t R = rows_of(x), C = cols_of(x);
  dispatch(op, x,
           {.cpu_f32 = [&] { cpu::log_softmax(x.data<float>(), y.data<float>(), R, C); },
            .cpu_f64 = [&] { ref::log_softmax(x.data<double>(), y.data<double>(), R, C); },
            .cuda_f32 = ATTEND_ON_CUDA(
                [&] { cuda::log_softmax(queue(x), x.data<float>(), y.data<float>(), R, C); })});
  return y;
}

Tensor logsumexp(const Tensor& x_in) {
  constexpr std::string_view op = "logsumexp";
  check_float(op, "x", x_in);
  ATTEND_CHECK(x_in.dim() >= 1 && x_in.size(-1) > 0,
               "logsumexp: x must have a non-empty last dimension, got {}",
               shape_str(x_in.shape()));
  const Tensor x = x_in.contiguous();
  Tensor y = Tensor::empty(Shape(x.shape().begin(), x.shape().end() - 1), x.dtype(), x.device());
  const int64_t R = rows_of(x), C = cols_of(x);
  dispatch(op, x,
           {.cpu_f32 = [&] { cpu::logsumexp(x.data<float>(), y.data<float>(), R, C); },
            .cpu_f64 = [&] { ref::logsumexp(x.data<double>(), y.data<double>(), R, C); },
            .cuda_f32 = ATTEND_ON_CUDA(
                [&] { cuda::logsumexp(queue(x), x.data<float>(), y.data<float>(), R, C); })});
  return y;
}

Tensor log_softmax_backward(const Tensor& y, const Tensor& dy) {
  return rows_backward("log_softmax_backward", y, dy, cpu::log_softmax_backward,
                       ref::log_softmax_backward<double>,
                       ATTEND_CUDA_ONLY(cuda::log_softmax_backward));
}

}  // namespace attend::ops
