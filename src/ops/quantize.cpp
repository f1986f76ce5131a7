// Quantization ops (see ops.h, "quantization"): per-row symmetric int8.
#include "ops/dispatch.h"

namespace attend::ops {
using namespace detail;

QuantizedRows quantize_rows(const Tensor& x_in) {
  constexpr std::string_view op = "quantize_rows";
  check_float(op, "x", x_in);
  ATTEND_CHECK(x_in.dim() >= 1, "{}: x must have at least one dimension, got a scalar", op);
  const Tensor x = x_in.contiguous();
  const int64_t rows = rows_of(x), cols = cols_of(x);
  QuantizedRows out{
      Tensor::empty(x.shape(), DType::kI8, x.device()),
      Tensor::empty(Shape(x.shape().begin(), x.shape().end() - 1), x.dtype(), x.device())};
  int64_t bad = -1;
  dispatch(op, x,
           {.cpu_f32 =
                [&] {
                  bad = cpu::quantize_rows(x.data<float>(), out.q.data<int8_t>(),
                                           out.scales.data<float>(), rows, cols);
                },
            .cpu_f64 =
                [&] {
                  bad = ref::quantize_rows(x.data<double>(), out.q.data<int8_t>(),
                                           out.scales.data<double>(), rows, cols);
                },
            .cuda_f32 = ATTEND_ON_CUDA([&] {
              Tensor reports = device_reports(x, 1);
              cuda::quantize_rows(queue(x), x.data<float>(), out.q.data<int8_t>(),
                                  out.scales.data<float>(), rows, cols, reports.data<int32_t>());
              bad = read_reports(reports)[0] - 1;
            })});
  ATTEND_CHECK(bad < 0, "{}: row {} of {} holds an infinite or NaN value", op, bad, x.str());
  return out;
}

Tensor dequantize_rows(const Tensor& q_in, const Tensor& scales_in) {
  constexpr std::string_view op = "dequantize_rows";
  check_dtype(op, "q", q_in, DType::kI8);
  check_float(op, "scales", scales_in);
  check_same_device(op, q_in, scales_in);
  ATTEND_CHECK(q_in.dim() >= 1 && scales_in.numel() == rows_of(q_in),
               "{}: scales {} do not give one scale per row of q {}", op, scales_in.str(),
               q_in.str());
  const Tensor q = q_in.contiguous(), s = scales_in.contiguous();
  Tensor y = Tensor::empty(q.shape(), s.dtype(), q.device());
  dispatch(op, s,
           {.cpu_f32 =
                [&] {
                  cpu::dequantize_rows(q.data<int8_t>(), s.data<float>(), y.data<float>(),
                                       rows_of(q), cols_of(q));
                },
            .cpu_f64 =
                [&] {
                  ref::dequantize_rows(q.data<int8_t>(), s.data<double>(), y.data<double>(),
                                       rows_of(q), cols_of(q));
                },
            .cuda_f32 = ATTEND_ON_CUDA([&] {
              cuda::dequantize_rows(queue(s), q.data<int8_t>(), s.data<float>(), y.data<float>(),
                                    rows_of(q), cols_of(q));
            })});
  return y;
}

std::string int8_products_kernel() { return cpu::int8_kernel_description(); }

Tensor linear_int8(const Tensor& x_in, const Tensor& w_in, const Tensor& scales_in,
                   const Tensor& bias_in) {
  constexpr std::string_view op = "linear_int8";
  check_dtype(op, "x", x_in, DType::kF32);
  check_dtype(op, "weight", w_in, DType::kI8);
  check_dtype(op, "weight scales", scales_in, DType::kF32);
  check_same_device(op, x_in, w_in);
  check_same_device(op, x_in, scales_in);
  check_dim(op, "weight", w_in, 2);
  const int64_t N = w_in.size(0), K = w_in.size(1);
  ATTEND_CHECK(scales_in.dim() == 1 && scales_in.size(0) == N,
               "{}: weight scales {} do not give one scale per row of weight {}", op,
               scales_in.str(), w_in.str());
  ATTEND_CHECK(x_in.dim() >= 1 && x_in.size(-1) == K,
               "{}: input {} does not match weight {} (expected last dim {})", op, x_in.str(),
               w_in.str(), K);
  ATTEND_CHECK(K < (int64_t{1} << 17), "{}: {} columns overflow the int32 sums (at most {})", op, K,
               (int64_t{1} << 17) - 1);
  if (bias_in.defined()) {
    check_dtype(op, "bias", bias_in, DType::kF32);
    check_same_device(op, x_in, bias_in);
    ATTEND_CHECK(bias_in.dim() == 1 && bias_in.size(0) == N, "{}: bias {} does not match weight {}",
                 op, bias_in.str(), w_in.str());
  }
  const QuantizedRows xq = quantize_rows(x_in);
  const Tensor w = w_in.contiguous(), s = scales_in.contiguous();
  const Tensor b = bias_in.defined() ? bias_in.contiguous() : Tensor();
  Shape out_shape = x_in.shape();
  out_shape.back() = N;
  Tensor y = Tensor::empty(out_shape, DType::kF32, x_in.device());
  dispatch(op, y, {.cpu_f32 = [&] {
             cpu::gemm_int8(rows_of(x_in), N, K, xq.q.data<int8_t>(), xq.scales.data<float>(),
                            w.data<int8_t>(), s.data<float>(),
                            b.defined() ? b.data<float>() : nullptr, y.data<float>());
           }});
  return y;
}

}  // namespace attend::ops
