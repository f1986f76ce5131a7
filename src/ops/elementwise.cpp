// Ops: elementwise arithmetic, activations, dropout, scaling and the simple reductions. Validation,
// allocation and the (device, dtype) dispatch; declared in ops.h.
#include <cmath>
#include <vector>

#include "ops/dispatch.h"

namespace attend::ops {
using namespace detail;

namespace {
// y = a (op) b elementwise: the op's CPU f32 and reference kernels, and on CUDA cuda::binary.
using BinaryF32 = void (*)(const float*, const float*, float*, int64_t);
using BinaryF64 = void (*)(const double*, const double*, double*, int64_t);
Tensor binary(std::string_view op, const Tensor& a_in, const Tensor& b_in, BinaryF32 f32,
              BinaryF64 f64, [[maybe_unused]] cuda::Binary kind) {
  check_float(op, "a", a_in);
  check_float(op, "b", b_in);
  check_same_dtype(op, a_in, b_in);
  check_same_device(op, a_in, b_in);
  check_same_shape(op, a_in, b_in);
  const Tensor a = a_in.contiguous(), b = b_in.contiguous();
  Tensor y = like(a);
  const int64_t n = a.numel();
  dispatch(op, a,
           {.cpu_f32 = [&] { f32(a.data<float>(), b.data<float>(), y.data<float>(), n); },
            .cpu_f64 = [&] { f64(a.data<double>(), b.data<double>(), y.data<double>(), n); },
            .cuda_f32 = ATTEND_ON_CUDA([&] {
              cuda::binary(queue(a), kind, a.data<float>(), b.data<float>(), y.data<float>(), n);
            })});
  return y;
}

// y = kernel(x) elementwise; on CUDA, cuda::unary(kind).
template <typename F32, typename F64>
Tensor unary(std::string_view op, const Tensor& x_in, F32 f32, F64 f64,
             [[maybe_unused]] cuda::Unary kind) {
  check_float(op, "x", x_in);
  const Tensor x = x_in.contiguous();
  Tensor y = like(x);
  dispatch(op, x,
           {.cpu_f32 = [&] { f32(x.data<float>(), y.data<float>(), x.numel()); },
            .cpu_f64 = [&] { f64(x.data<double>(), y.data<double>(), x.numel()); },
            .cuda_f32 = ATTEND_ON_CUDA([&] {
              cuda::unary(queue(x), kind, x.data<float>(), y.data<float>(), x.numel());
            })});
  return y;
}
}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  return binary("add", a, b, cpu::add, ref::add<double>, cuda::Binary::kAdd);
}
Tensor sub(const Tensor& a, const Tensor& b) {
  return binary("sub", a, b, cpu::sub, ref::sub<double>, cuda::Binary::kSub);
}
Tensor mul(const Tensor& a, const Tensor& b) {
  return binary("mul", a, b, cpu::mul, ref::mul<double>, cuda::Binary::kMul);
}
Tensor exp(const Tensor& x) {
  return unary("exp", x, cpu::exp, ref::exp<double>, cuda::Unary::kExp);
}
Tensor log(const Tensor& x) {
  return unary("log", x, cpu::log, ref::log<double>, cuda::Unary::kLog);
}
Tensor rsqrt(const Tensor& x) {
  return unary("rsqrt", x, cpu::rsqrt, ref::rsqrt<double>, cuda::Unary::kRsqrt);
}

Tensor cast(const Tensor& x, DType dtype) {
  constexpr std::string_view op = "cast";
  check_defined(op, "x", x);
  ATTEND_CHECK(is_floating(x.dtype()), "{}: argument 'x' must be a floating type, got {}", op,
               x.str());
  ATTEND_CHECK(is_floating(dtype), "{}: target dtype {} is not a floating type", op,
               dtype_name(dtype));
  if (x.dtype() == dtype) return x;
  Tensor y;
  // Tensor::to converts on the host (core/tensor.cpp).
  auto convert = [&] { y = x.to(dtype); };
  dispatch(op, x, {.cpu_f32 = convert, .cpu_f64 = convert, .cpu_bf16 = convert});
  return y;
}

Tensor affine(const Tensor& x_in, double alpha, double beta) {
  constexpr std::string_view op = "affine";
  check_float(op, "x", x_in);
  const Tensor x = x_in.contiguous();
  Tensor y = like(x);
  dispatch(op, x,
           {.cpu_f32 =
                [&] {
                  cpu::affine(x.data<float>(), y.data<float>(), x.numel(),
                              static_cast<float>(alpha), static_cast<float>(beta));
                },
            .cpu_f64 =
                [&] { ref::affine(x.data<double>(), y.data<double>(), x.numel(), alpha, beta); },
            .cuda_f32 = ATTEND_ON_CUDA([&] {
              cuda::affine(queue(x), x.data<float>(), y.data<float>(), x.numel(),
                           static_cast<float>(alpha), static_cast<float>(beta));
            })});
  return y;
}

void accumulate_(Tensor& y, const Tensor& x_in) {
  constexpr std::string_view op = "accumulate";
  check_float(op, "y", y);
  check_same_dtype(op, y, x_in);
  check_same_device(op, y, x_in);
  check_same_shape(op, y, x_in);
  ATTEND_CHECK(y.is_contiguous(), "accumulate: destination {} must be contiguous",
               shape_str(y.shape()));
  const Tensor x = x_in.contiguous();
  dispatch(op, y,
           {.cpu_f32 = [&] { cpu::accumulate(x.data<float>(), y.data<float>(), y.numel()); },
            .cpu_f64 = [&] { ref::accumulate(x.data<double>(), y.data<double>(), y.numel()); },
            .cuda_f32 = ATTEND_ON_CUDA([&] {
              cuda::binary(queue(y), cuda::Binary::kAdd, y.data<float>(), x.data<float>(),
                           y.data<float>(), y.numel());
            })});
}

void scale_(Tensor& x, double alpha) {
  constexpr std::string_view op = "scale_";
  check_float(op, "x", x);
  ATTEND_CHECK(x.is_contiguous(), "scale_: {} must be contiguous", shape_str(x.shape()));
  dispatch(op, x,
           {.cpu_f32 = [&] { cpu::scale(x.data<float>(), x.numel(), static_cast<float>(alpha)); },
            .cpu_f64 = [&] { ref::scale(x.data<double>(), x.numel(), alpha); },
            .cuda_f32 = ATTEND_ON_CUDA([&] {
              cuda::affine(queue(x), x.data<float>(), x.data<float>(), x.numel(),
                           static_cast<float>(alpha), 0.f);
            })});
}

double sum_squares(const Tensor& x_in) {
  constexpr std::string_view op = "sum_squares";
  check_float(op, "x", x_in);
  const Tensor x = x_in.contiguous();
  double out = 0;
  dispatch(op, x,
           {.cpu_f32 = [&] { out = cpu::sum_squares(x.data<float>(), x.numel()); },
            .cpu_f64 = [&] { out = ref::sum_squares(x.data<double>(), x.numel()); },
            .cuda_f32 = ATTEND_ON_CUDA([&] {
              // The parts' sums come back and are added here in order (deterministic).
              const cuda::Partition p = cuda::partition(x.numel(), cuda::kReduceParts);
              Tensor parts = Tensor::zeros({p.parts}, DType::kF64, x.device());
              cuda::sum_squares(queue(x), x.data<float>(), x.numel(), parts.data<double>());
              for (double v : parts.to(Device::cpu()).to_vector<double>()) out += v;
            })});
  return out;
}

Tensor bias_add(const Tensor& x_in, const Tensor& bias_in) {
  constexpr std::string_view op = "bias_add";
  check_float(op, "x", x_in);
  check_same_dtype(op, x_in, bias_in);
  check_same_device(op, x_in, bias_in);
  ATTEND_CHECK(bias_in.dim() == 1 && x_in.dim() >= 1 && bias_in.size(0) == x_in.size(-1),
               "bias_add: bias {} does not match the last dimension of x {}",
               shape_str(bias_in.shape()), shape_str(x_in.shape()));
  const Tensor x = x_in.contiguous(), b = bias_in.contiguous();
  Tensor y = like(x);
  const int64_t R = rows_of(x), C = cols_of(x);
  dispatch(
      op, x,
      {.cpu_f32 = [&] { cpu::bias_add(x.data<float>(), b.data<float>(), y.data<float>(), R, C); },
       .cpu_f64 =
           [&] { ref::bias_add(x.data<double>(), b.data<double>(), y.data<double>(), R, C); },
       .cuda_f32 = ATTEND_ON_CUDA([&] {
         cuda::bias_add(queue(x), x.data<float>(), b.data<float>(), y.data<float>(), R, C);
       })});
  return y;
}

Tensor sum_rows(const Tensor& dy_in) {
  constexpr std::string_view op = "sum_rows";
  check_float(op, "x", dy_in);
  ATTEND_CHECK(dy_in.dim() >= 1, "sum_rows: expected at least 1 dimension, got {}",
               shape_str(dy_in.shape()));
  const Tensor dy = dy_in.contiguous();
  const int64_t R = rows_of(dy), C = cols_of(dy);
  Tensor db = Tensor::empty({C}, dy.dtype(), dy.device());
  dispatch(op, dy,
           {.cpu_f32 = [&] { cpu::sum_rows(dy.data<float>(), db.data<float>(), R, C); },
            .cpu_f64 = [&] { ref::sum_rows(dy.data<double>(), db.data<double>(), R, C); },
            .cuda_f32 = ATTEND_ON_CUDA(
                [&] { cuda::sum_rows(queue(dy), dy.data<float>(), db.data<float>(), R, C); })});
  return db;
}

Tensor relu(const Tensor& x) {
  return unary("relu", x, cpu::relu, ref::relu<double>, cuda::Unary::kRelu);
}
Tensor gelu(const Tensor& x) {
  return unary("gelu", x, cpu::gelu, ref::gelu<double>, cuda::Unary::kGelu);
}
Tensor gelu_tanh(const Tensor& x) {
  return unary("gelu_tanh", x, cpu::gelu_tanh, ref::gelu_tanh<double>, cuda::Unary::kGeluTanh);
}
Tensor silu(const Tensor& x) {
  return unary("silu", x, cpu::silu, ref::silu<double>, cuda::Unary::kSilu);
}

namespace {
// The backward of an activation: dx from the saved input and dy.
template <typename F32, typename F64>
Tensor unary_backward(std::string_view op, const Tensor& x_in, const Tensor& dy_in, F32 f32,
                      F64 f64, [[maybe_unused]] cuda::Unary kind) {
  // Named references, not a structured binding: clang 14 cannot capture one in a lambda.
  const BackwardOperands operands = backward_operands(op, x_in, dy_in);
  const Tensor &x = operands.saved, &dy = operands.dy, &dx = operands.dx;
  dispatch(
      op, x,
      {.cpu_f32 = [&] { f32(x.data<float>(), dy.data<float>(), dx.data<float>(), x.numel()); },
       .cpu_f64 = [&] { f64(x.data<double>(), dy.data<double>(), dx.data<double>(), x.numel()); },
       .cuda_f32 = ATTEND_ON_CUDA([&] {
         cuda::unary_backward(queue(x), kind, x.data<float>(), dy.data<float>(), dx.data<float>(),
                              x.numel());
       })});
  return dx;
}
}  // namespace

Tensor relu_backward(const Tensor& x, const Tensor& dy) {
  return unary_backward("relu_backward", x, dy, cpu::relu_backward, ref::relu_backward<double>,
                        cuda::Unary::kRelu);
}
Tensor gelu_backward(const Tensor& x, const Tensor& dy) {
  return unary_backward("gelu_backward", x, dy, cpu::gelu_backward, ref::gelu_backward<double>,
                        cuda::Unary::kGelu);
}
Tensor gelu_tanh_backward(const Tensor& x, const Tensor& dy) {
  return unary_backward("gelu_tanh_backward", x, dy, cpu::gelu_tanh_backward,
                        ref::gelu_tanh_backward<double>, cuda::Unary::kGeluTanh);
}
Tensor silu_backward(const Tensor& x, const Tensor& dy) {
  return unary_backward("silu_backward", x, dy, cpu::silu_backward, ref::silu_backward<double>,
                        cuda::Unary::kSilu);
}

Tensor dropout(const Tensor& x_in, double p, uint64_t seed, uint64_t stream) {
  constexpr std::string_view op = "dropout";
  check_float(op, "x", x_in);
  ATTEND_CHECK(p >= 0.0 && p < 1.0, "dropout: probability must be in [0, 1), got {}", p);
  const Tensor x = x_in.contiguous();
  if (p == 0.0) return x.clone();
  Tensor y = like(x);
  dispatch(
      op, x,
      {.cpu_f32 =
           [&] { cpu::dropout(x.data<float>(), y.data<float>(), x.numel(), p, seed, stream); },
       .cpu_f64 =
           [&] { ref::dropout(x.data<double>(), y.data<double>(), x.numel(), p, seed, stream); },
       .cuda_f32 = ATTEND_ON_CUDA([&] {
         cuda::dropout(queue(x), x.data<float>(), y.data<float>(), x.numel(), static_cast<float>(p),
                       seed, stream);
       })});
  return y;
}

Tensor dropout_backward(const Tensor& dy, double p, uint64_t seed, uint64_t stream) {
  return dropout(dy, p, seed, stream);  // same mask and scale: d(x * m / (1-p)) = dy * m / (1-p)
}

Tensor sum(const Tensor& x_in) {
  constexpr std::string_view op = "sum";
  check_float(op, "x", x_in);
  const Tensor x = x_in.contiguous();
  Tensor y = Tensor::empty({}, x.dtype(), x.device());
  dispatch(
      op, x,
      {.cpu_f32 =
           [&] { y.data<float>()[0] = static_cast<float>(cpu::sum(x.data<float>(), x.numel())); },
       .cpu_f64 = [&] { ref::sum_last(x.data<double>(), y.data<double>(), 1, x.numel()); },
       .cuda_f32 = ATTEND_ON_CUDA(
           [&] { cuda::sum_last(queue(x), x.data<float>(), y.data<float>(), 1, x.numel()); })});
  return y;
}

Tensor sum_last(const Tensor& x_in) {
  constexpr std::string_view op = "sum_last";
  check_float(op, "x", x_in);
  ATTEND_CHECK(x_in.dim() >= 1, "sum_last: expected at least 1 dimension, got {}",
               shape_str(x_in.shape()));
  const Tensor x = x_in.contiguous();
  Tensor y = Tensor::empty(Shape(x.shape().begin(), x.shape().end() - 1), x.dtype(), x.device());
  const int64_t R = rows_of(x), C = cols_of(x);
  dispatch(op, x,
           {.cpu_f32 = [&] { cpu::sum_last(x.data<float>(), y.data<float>(), R, C); },
            .cpu_f64 = [&] { ref::sum_last(x.data<double>(), y.data<double>(), R, C); },
            .cuda_f32 = ATTEND_ON_CUDA(
                [&] { cuda::sum_last(queue(x), x.data<float>(), y.data<float>(), R, C); })});
  return y;
}

Tensor broadcast_last(const Tensor& x_in, int64_t cols) {
  constexpr std::string_view op = "broadcast_last";
  check_float(op, "x", x_in);
  ATTEND_CHECK(cols >= 0, "broadcast_last: negative width {}", cols);
  const Tensor x = x_in.contiguous();
  Shape s = x.shape();
  s.push_back(cols);
  Tensor y = Tensor::empty(s, x.dtype(), x.device());
  dispatch(
      op, x,
      {.cpu_f32 = [&] { cpu::broadcast_last(x.data<float>(), y.data<float>(), x.numel(), cols); },
       .cpu_f64 = [&] { ref::broadcast_last(x.data<double>(), y.data<double>(), x.numel(), cols); },
       .cuda_f32 = ATTEND_ON_CUDA([&] {
         cuda::broadcast_last(queue(x), x.data<float>(), y.data<float>(), x.numel(), cols);
       })});
  return y;
}

Tensor broadcast_scalar(const Tensor& scalar, const Shape& shape) {
  ATTEND_CHECK(scalar.numel() == 1, "broadcast_scalar: expected one element, got {}",
               shape_str(scalar.shape()));
  return broadcast_last(scalar.reshape({1}), shape_numel(shape)).reshape(shape);
}

}  // namespace attend::ops
