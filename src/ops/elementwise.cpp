// Ops: elementwise arithmetic, activations, dropout, scaling and the simple reductions. Validation,
// allocation and the (device, dtype) dispatch; declared in ops.h.
#include <cmath>
#include <vector>

#include "ops/dispatch.h"

namespace attend::ops {
using namespace detail;

namespace {
enum class Binary { kAdd, kSub, kMul };
Tensor binary(std::string_view op, Binary kind, const Tensor& a_in, const Tensor& b_in) {
  check_float(op, "a", a_in);
  check_float(op, "b", b_in);
  check_same_dtype(op, a_in, b_in);
  check_same_device(op, a_in, b_in);
  check_same_shape(op, a_in, b_in);
  const Tensor a = a_in.contiguous(), b = b_in.contiguous();
  Tensor y = like(a);
  const int64_t n = a.numel();
  switch (path_of(op, a)) {
    case Path::kCpuF32: {
      const float *pa = a.data<float>(), *pb = b.data<float>();
      float* py = y.data<float>();
      if (kind == Binary::kAdd)
        cpu::add(pa, pb, py, n);
      else if (kind == Binary::kMul)
        cpu::mul(pa, pb, py, n);
      else
        ref::sub(pa, pb, py, n);
      break;
    }
    case Path::kCpuF64: {
      const double *pa = a.data<double>(), *pb = b.data<double>();
      double* py = y.data<double>();
      if (kind == Binary::kAdd)
        ref::add(pa, pb, py, n);
      else if (kind == Binary::kMul)
        ref::mul(pa, pb, py, n);
      else
        ref::sub(pa, pb, py, n);
      break;
    }
    case Path::kCudaF32:
#ifdef ATTEND_WITH_CUDA
      if (kind == Binary::kAdd) {
        cuda::add(detail::queue(a), a.data<float>(), b.data<float>(), y.data<float>(), n);
        break;
      }
#endif
      unsupported(op, a);
  }
  return y;
}

enum class Unary { kExp, kLog, kRsqrt };
Tensor unary(std::string_view op, Unary kind, const Tensor& x_in) {
  check_float(op, "x", x_in);
  const Tensor x = x_in.contiguous();
  Tensor y = like(x);
  const int64_t n = x.numel();
  auto run = [&](auto* px, auto* py) {
    if (kind == Unary::kExp)
      ref::exp(px, py, n);
    else if (kind == Unary::kLog)
      ref::log(px, py, n);
    else
      ref::rsqrt(px, py, n);
  };
  if (cpu_path(op, x) == Path::kCpuF32)
    run(x.data<float>(), y.data<float>());
  else
    run(x.data<double>(), y.data<double>());
  return y;
}
}  // namespace

Tensor add(const Tensor& a, const Tensor& b) { return binary("add", Binary::kAdd, a, b); }
Tensor sub(const Tensor& a, const Tensor& b) { return binary("sub", Binary::kSub, a, b); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary("mul", Binary::kMul, a, b); }
Tensor exp(const Tensor& x) { return unary("exp", Unary::kExp, x); }
Tensor log(const Tensor& x) { return unary("log", Unary::kLog, x); }
Tensor rsqrt(const Tensor& x) { return unary("rsqrt", Unary::kRsqrt, x); }

Tensor cast(const Tensor& x, DType dtype) {
  constexpr std::string_view op = "cast";
  check_defined(op, "x", x);
  ATTEND_CHECK(is_floating(x.dtype()), "{}: argument 'x' must be a floating type, got {}", op,
               x.str());
  ATTEND_CHECK(is_floating(dtype), "{}: target dtype {} is not a floating type", op,
               dtype_name(dtype));
  if (x.dtype() == dtype) return x;
  if (!x.device().is_cpu()) unsupported(op, x);
  return x.to(dtype);
}

Tensor affine(const Tensor& x_in, double alpha, double beta) {
  constexpr std::string_view op = "affine";
  check_float(op, "x", x_in);
  const Tensor x = x_in.contiguous();
  Tensor y = like(x);
  if (cpu_path(op, x) == Path::kCpuF32)
    cpu::affine(x.data<float>(), y.data<float>(), x.numel(), static_cast<float>(alpha),
                static_cast<float>(beta));
  else
    ref::affine(x.data<double>(), y.data<double>(), x.numel(), alpha, beta);
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
  switch (path_of(op, y)) {
    case Path::kCpuF32:
      cpu::accumulate(x.data<float>(), y.data<float>(), y.numel());
      break;
    case Path::kCpuF64:
      ref::accumulate(x.data<double>(), y.data<double>(), y.numel());
      break;
    case Path::kCudaF32:
#ifdef ATTEND_WITH_CUDA
      cuda::add(detail::queue(y), y.data<float>(), x.data<float>(), y.data<float>(), y.numel());
      break;
#endif
      unsupported(op, y);
  }
}

void scale_(Tensor& x, double alpha) {
  constexpr std::string_view op = "scale_";
  check_float(op, "x", x);
  ATTEND_CHECK(x.is_contiguous(), "scale_: {} must be contiguous", shape_str(x.shape()));
  if (cpu_path(op, x) == Path::kCpuF32)
    ref::scale(x.data<float>(), x.numel(), static_cast<float>(alpha));
  else
    ref::scale(x.data<double>(), x.numel(), alpha);
}

double sum_squares(const Tensor& x_in) {
  constexpr std::string_view op = "sum_squares";
  check_float(op, "x", x_in);
  const Tensor x = x_in.contiguous();
  if (cpu_path(op, x) == Path::kCpuF32) return ref::sum_squares(x.data<float>(), x.numel());
  return ref::sum_squares(x.data<double>(), x.numel());
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
  if (cpu_path(op, x) == Path::kCpuF32)
    cpu::bias_add(x.data<float>(), b.data<float>(), y.data<float>(), R, C);
  else
    ref::bias_add(x.data<double>(), b.data<double>(), y.data<double>(), R, C);
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
  if (cpu_path(op, dy) == Path::kCpuF32)
    cpu::sum_rows(dy.data<float>(), db.data<float>(), R, C);
  else
    ref::sum_rows(dy.data<double>(), db.data<double>(), R, C);
  return db;
}

Tensor relu(const Tensor& x_in) {
  constexpr std::string_view op = "relu";
  check_float(op, "x", x_in);
  const Tensor x = x_in.contiguous();
  Tensor y = like(x);
  switch (path_of(op, x)) {
    case Path::kCpuF32:
      cpu::relu(x.data<float>(), y.data<float>(), x.numel());
      break;
    case Path::kCpuF64:
      ref::relu(x.data<double>(), y.data<double>(), x.numel());
      break;
    case Path::kCudaF32:
#ifdef ATTEND_WITH_CUDA
      cuda::relu(detail::queue(x), x.data<float>(), y.data<float>(), x.numel());
#endif
      break;
  }
  return y;
}

Tensor relu_backward(const Tensor& x_in, const Tensor& dy_in) {
  constexpr std::string_view op = "relu_backward";
  check_float(op, "x", x_in);
  check_same_dtype(op, x_in, dy_in);
  check_same_device(op, x_in, dy_in);
  check_same_shape(op, x_in, dy_in);
  const Tensor x = x_in.contiguous(), dy = dy_in.contiguous();
  Tensor dx = like(x);
  switch (path_of(op, x)) {
    case Path::kCpuF32:
      cpu::relu_backward(x.data<float>(), dy.data<float>(), dx.data<float>(), x.numel());
      break;
    case Path::kCpuF64:
      ref::relu_backward(x.data<double>(), dy.data<double>(), dx.data<double>(), x.numel());
      break;
    case Path::kCudaF32:
#ifdef ATTEND_WITH_CUDA
      cuda::relu_backward(detail::queue(x), x.data<float>(), dy.data<float>(), dx.data<float>(),
                          x.numel());
#endif
      break;
  }
  return dx;
}

Tensor gelu(const Tensor& x) {
  return unary_cpu(
      "gelu", x, [](const float* a, float* y, const Tensor& t) { cpu::gelu(a, y, t.numel()); },
      [](const double* a, double* y, const Tensor& t) { ref::gelu(a, y, t.numel()); });
}

Tensor gelu_backward(const Tensor& x, const Tensor& dy) {
  return backward_cpu(
      "gelu_backward", x, dy,
      [](const float* a, const float* g, float* d, const Tensor& t) {
        cpu::gelu_backward(a, g, d, t.numel());
      },
      [](const double* a, const double* g, double* d, const Tensor& t) {
        ref::gelu_backward(a, g, d, t.numel());
      });
}

Tensor dropout(const Tensor& x_in, double p, uint64_t seed, uint64_t stream) {
  constexpr std::string_view op = "dropout";
  check_float(op, "x", x_in);
  ATTEND_CHECK(p >= 0.0 && p < 1.0, "dropout: probability must be in [0, 1), got {}", p);
  const Tensor x = x_in.contiguous();
  if (p == 0.0) return x.clone();
  Tensor y = like(x);
  if (cpu_path(op, x) == Path::kCpuF32)
    cpu::dropout(x.data<float>(), y.data<float>(), x.numel(), p, seed, stream);
  else
    ref::dropout(x.data<double>(), y.data<double>(), x.numel(), p, seed, stream);
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
  if (cpu_path(op, x) == Path::kCpuF32) {
    double acc = 0.0;  // double accumulator: the sum of a large tensor stays exact to fp32
    const float* p = x.data<float>();
    for (int64_t i = 0; i < x.numel(); ++i) acc += p[i];
    y.data<float>()[0] = static_cast<float>(acc);
  } else {
    ref::sum_last(x.data<double>(), y.data<double>(), 1, x.numel());
  }
  return y;
}

Tensor sum_last(const Tensor& x_in) {
  constexpr std::string_view op = "sum_last";
  check_float(op, "x", x_in);
  ATTEND_CHECK(x_in.dim() >= 1, "sum_last: expected at least 1 dimension, got {}",
               shape_str(x_in.shape()));
  return reduce_last_cpu(
      op, x_in, [](const float* a, float* y, int64_t r, int64_t c) { ref::sum_last(a, y, r, c); },
      [](const double* a, double* y, int64_t r, int64_t c) { ref::sum_last(a, y, r, c); });
}

Tensor broadcast_last(const Tensor& x_in, int64_t cols) {
  constexpr std::string_view op = "broadcast_last";
  check_float(op, "x", x_in);
  ATTEND_CHECK(cols >= 0, "broadcast_last: negative width {}", cols);
  const Tensor x = x_in.contiguous();
  Shape s = x.shape();
  s.push_back(cols);
  Tensor y = Tensor::empty(s, x.dtype(), x.device());
  if (cpu_path(op, x) == Path::kCpuF32)
    ref::broadcast_last(x.data<float>(), y.data<float>(), x.numel(), cols);
  else
    ref::broadcast_last(x.data<double>(), y.data<double>(), x.numel(), cols);
  return y;
}

Tensor broadcast_scalar(const Tensor& scalar, const Shape& shape) {
  ATTEND_CHECK(scalar.numel() == 1, "broadcast_scalar: expected one element, got {}",
               shape_str(scalar.shape()));
  return broadcast_last(scalar.reshape({1}), shape_numel(shape)).reshape(shape);
}

}  // namespace attend::ops
