// Ops: the Adam(W) update; the CPU GEMM library name. Validation, allocation and the (device,
// dtype) dispatch; declared in ops.h.
#include <cmath>
#include <vector>

#include "ops/dispatch.h"

namespace attend::ops {
using namespace detail;

void adam_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamConfig& config,
                 int64_t step) {
  constexpr std::string_view op = "adam_update";
  check_float(op, "param", param);
  for (const Tensor* t : {&grad, static_cast<const Tensor*>(&m), static_cast<const Tensor*>(&v)}) {
    check_same_dtype(op, param, *t);
    check_same_shape(op, param, *t);
    check_same_device(op, param, *t);
  }
  ATTEND_CHECK(param.is_contiguous() && m.is_contiguous() && v.is_contiguous(),
               "adam_update: param {} and its moments must be contiguous",
               shape_str(param.shape()));
  ATTEND_CHECK(step >= 1, "adam_update: step must be >= 1, got {}", step);
  const Tensor g = grad.contiguous();
  dispatch(op, param,
           {.cpu_f32 =
                [&] {
                  cpu::adam(param.data<float>(), g.data<float>(), m.data<float>(), v.data<float>(),
                            param.numel(), config, step);
                },
            .cpu_f64 =
                [&] {
                  ref::adam(param.data<double>(), g.data<double>(), m.data<double>(),
                            v.data<double>(), param.numel(), config, step);
                },
            .cuda_f32 = ATTEND_ON_CUDA([&] {
              cuda::adam(queue(param), param.data<float>(), g.data<float>(), m.data<float>(),
                         v.data<float>(), param.numel(), config, step);
            })});
}

}  // namespace attend::ops
