// Ops: layer norm and RMSNorm with a fused residual, and their backward. Validation, allocation and
// the (device, dtype) dispatch; declared in ops.h.
#include <cmath>
#include <vector>

#include "ops/dispatch.h"

namespace attend::ops {
using namespace detail;

namespace {
// Both norms: beta undefined for RMSNorm.
LayerNormOut norm(std::string_view op, const Tensor& x_in, const Tensor& residual,
                  const Tensor& gamma, const Tensor& beta, double eps, bool rms) {
  check_float(op, "x", x_in);
  check_same_dtype(op, x_in, gamma);
  if (!rms) check_same_dtype(op, x_in, beta);
  ATTEND_CHECK(x_in.dim() >= 1, "{}: expected at least 1 dimension, got {}", op,
               shape_str(x_in.shape()));
  const int64_t C = x_in.size(-1), R = rows_of(x_in);
  ATTEND_CHECK(gamma.dim() == 1 && gamma.size(0) == C,
               "{}: expected gamma of shape [{}] for input {}, got {}", op, C,
               shape_str(x_in.shape()), shape_str(gamma.shape()));
  ATTEND_CHECK(rms || beta.shape() == gamma.shape(),
               "{}: expected beta of shape [{}] for input {}, got {}", op, C,
               shape_str(x_in.shape()), shape_str(beta.shape()));
  ATTEND_CHECK(eps > 0.0, "{}: eps must be positive, got {}", op, eps);
  if (residual.defined()) {
    check_same_dtype(op, x_in, residual);
    check_same_shape(op, x_in, residual);
  }
  const Tensor x = x_in.contiguous();
  const Tensor r = residual.defined() ? residual.contiguous() : Tensor();
  const Tensor g = gamma.contiguous(), b = rms ? Tensor() : beta.contiguous();
  LayerNormOut out;
  out.rms = rms;
  out.y = like(x);
  out.sum = residual.defined() ? like(x) : x;
  out.mean = Tensor::empty({R}, x.dtype(), x.device());
  out.rstd = Tensor::empty({R}, x.dtype(), x.device());
  dispatch(
      op, x,
      {.cpu_f32 =
           [&] {
             cpu::layer_norm(x.data<float>(), r.defined() ? r.data<float>() : nullptr,
                             g.data<float>(), rms ? nullptr : b.data<float>(), out.y.data<float>(),
                             r.defined() ? out.sum.data<float>() : nullptr, out.mean.data<float>(),
                             out.rstd.data<float>(), R, C, eps, rms);
           },
       .cpu_f64 =
           [&] {
             ref::layer_norm(x.data<double>(), r.defined() ? r.data<double>() : nullptr,
                             g.data<double>(), rms ? nullptr : b.data<double>(),
                             out.y.data<double>(), r.defined() ? out.sum.data<double>() : nullptr,
                             out.mean.data<double>(), out.rstd.data<double>(), R, C, eps, rms);
           },
       .cuda_f32 = ATTEND_ON_CUDA([&] {
         cuda::layer_norm(queue(x), x.data<float>(), r.defined() ? r.data<float>() : nullptr,
                          g.data<float>(), rms ? nullptr : b.data<float>(), out.y.data<float>(),
                          r.defined() ? out.sum.data<float>() : nullptr, out.mean.data<float>(),
                          out.rstd.data<float>(), R, C, eps, rms);
       })});
  return out;
}
}  // namespace

LayerNormOut layer_norm(const Tensor& x, const Tensor& residual, const Tensor& gamma,
                        const Tensor& beta, double eps) {
  return norm("layer_norm", x, residual, gamma, beta, eps, false);
}

LayerNormOut rms_norm(const Tensor& x, const Tensor& residual, const Tensor& gamma, double eps) {
  return norm("rms_norm", x, residual, gamma, Tensor(), eps, true);
}

LayerNormGrads layer_norm_backward(const Tensor& dy_in, const LayerNormOut& saved,
                                   const Tensor& gamma) {
  constexpr std::string_view op = "layer_norm_backward";
  check_float(op, "dy", dy_in);
  check_same_shape(op, dy_in, saved.sum);
  check_same_dtype(op, dy_in, saved.sum);
  const Tensor dy = dy_in.contiguous(), g = gamma.contiguous();
  const int64_t C = cols_of(dy), R = rows_of(dy);
  LayerNormGrads out;
  out.dx = like(dy);
  out.dgamma = Tensor::empty({C}, dy.dtype(), dy.device());
  if (!saved.rms) out.dbeta = Tensor::empty({C}, dy.dtype(), dy.device());  // RMSNorm: none
  dispatch(op, dy,
           {.cpu_f32 =
                [&] {
                  cpu::layer_norm_backward(
                      dy.data<float>(), saved.sum.data<float>(), g.data<float>(),
                      saved.mean.data<float>(), saved.rstd.data<float>(), out.dx.data<float>(),
                      out.dgamma.data<float>(), saved.rms ? nullptr : out.dbeta.data<float>(), R, C,
                      saved.rms);
                },
            .cpu_f64 =
                [&] {
                  ref::layer_norm_backward(
                      dy.data<double>(), saved.sum.data<double>(), g.data<double>(),
                      saved.mean.data<double>(), saved.rstd.data<double>(), out.dx.data<double>(),
                      out.dgamma.data<double>(), saved.rms ? nullptr : out.dbeta.data<double>(), R,
                      C, saved.rms);
                },
            .cuda_f32 = ATTEND_ON_CUDA([&] {
              Tensor scratch =
                  Tensor::empty({cuda::layer_norm_scratch(R, C)}, DType::kF32, dy.device());
              cuda::layer_norm_backward(
                  queue(dy), dy.data<float>(), saved.sum.data<float>(), g.data<float>(),
                  saved.mean.data<float>(), saved.rstd.data<float>(), out.dx.data<float>(),
                  out.dgamma.data<float>(), saved.rms ? nullptr : out.dbeta.data<float>(),
                  scratch.data<float>(), R, C, saved.rms);
            })});
  return out;
}

}  // namespace attend::ops
