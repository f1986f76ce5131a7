// Op implementations: validation, allocation and the (device, dtype) dispatch switch.
#include "ops/ops.h"

#include <cmath>
#include <vector>

#include "kernels/cpu/cpu.h"
#include "kernels/cpu/flash_attention.h"
#include "kernels/ref/ref.h"
#include "ops/check.h"
#ifdef ATTEND_WITH_CUDA
#include "kernels/cuda/cuda.h"
#endif

namespace attend::ops {
using namespace detail;

namespace {

enum class Path { kCpuF32, kCpuF64, kCudaF32 };

Path path_of(std::string_view op, const Tensor& t) {
  if (t.device().is_cpu()) {
    if (t.dtype() == DType::kF32) return Path::kCpuF32;
    if (t.dtype() == DType::kF64) return Path::kCpuF64;
  } else if (t.device().is_cuda() && t.dtype() == DType::kF32) {
#ifdef ATTEND_WITH_CUDA
    return Path::kCudaF32;
#endif
  }
  unsupported(op, t);
}

/// Like path_of, but only CPU paths exist for this op.
Path cpu_path(std::string_view op, const Tensor& t) {
  const Path p = path_of(op, t);
  if (p == Path::kCudaF32) unsupported(op, t);
  return p;
}

Tensor like(const Tensor& t) { return Tensor::empty(t.shape(), t.dtype(), t.device()); }

/// y = kernel(x) for CPU-only ops: f32(x, y) or f64(x, y) on contiguous data.
template <typename F32, typename F64>
Tensor unary_cpu(std::string_view op, const Tensor& x_in, F32 f32, F64 f64) {
  check_float(op, "x", x_in);
  const Tensor x = x_in.contiguous();
  Tensor y = like(x);
  if (cpu_path(op, x) == Path::kCpuF32) f32(x.data<float>(), y.data<float>(), x);
  else f64(x.data<double>(), y.data<double>(), x);
  return y;
}

/// dx = kernel(saved, dy) for CPU-only backward ops (saved: the op's input or output).
template <typename F32, typename F64>
Tensor backward_cpu(std::string_view op, const Tensor& saved_in, const Tensor& dy_in, F32 f32,
                    F64 f64) {
  check_float(op, "saved", saved_in);
  check_same_dtype(op, saved_in, dy_in);
  check_same_shape(op, saved_in, dy_in);
  const Tensor s = saved_in.contiguous(), dy = dy_in.contiguous();
  Tensor dx = like(s);
  if (cpu_path(op, s) == Path::kCpuF32) f32(s.data<float>(), dy.data<float>(), dx.data<float>(), s);
  else f64(s.data<double>(), dy.data<double>(), dx.data<double>(), s);
  return dx;
}

int64_t rows_of(const Tensor& t) { return t.dim() == 0 ? 1 : t.numel() / t.size(-1); }
int64_t cols_of(const Tensor& t) { return t.dim() == 0 ? 1 : t.size(-1); }

/// y [x.shape() without the last dimension] = kernel(x, rows, cols) for CPU-only reductions over
/// the last dimension (the caller checks x).
template <typename F32, typename F64>
Tensor reduce_last_cpu(std::string_view op, const Tensor& x_in, F32 f32, F64 f64) {
  const Tensor x = x_in.contiguous();
  Tensor y = Tensor::empty(Shape(x.shape().begin(), x.shape().end() - 1), x.dtype(), x.device());
  if (cpu_path(op, x) == Path::kCpuF32)
    f32(x.data<float>(), y.data<float>(), rows_of(x), cols_of(x));
  else
    f64(x.data<double>(), y.data<double>(), rows_of(x), cols_of(x));
  return y;
}

kernels::Mask to_kernel_mask(const AttentionMask& m) {
  kernels::Mask km;
  km.causal = m.causal;
  km.query_offset = m.query_offset;
  km.window = m.local ? m.window : -1;
  km.global_tokens = m.local ? m.global_tokens : 0;
  if (m.key_lengths.defined()) km.key_lengths = m.key_lengths.data<int32_t>();
  return km;
}

void check_mask(std::string_view op, const AttentionMask& m, int64_t B, int64_t Tk) {
  if (m.local) {
    ATTEND_CHECK(m.window > 0, "{}: local attention needs a window > 0, got {}", op, m.window);
    ATTEND_CHECK(m.global_tokens >= 0, "{}: global_tokens must be >= 0, got {}", op,
                 m.global_tokens);
  }
  if (!m.key_lengths.defined()) return;
  check_dtype(op, "key_lengths", m.key_lengths, DType::kI32);
  check_cpu(op, m.key_lengths);
  ATTEND_CHECK(m.key_lengths.dim() == 1 && m.key_lengths.size(0) == B,
               "{}: key_lengths must have shape [{}] (batch), got {}", op, B,
               shape_str(m.key_lengths.shape()));
  const Tensor kl = m.key_lengths.contiguous();
  const int32_t* p = kl.data<int32_t>();
  for (int64_t b = 0; b < B; ++b)
    ATTEND_CHECK(p[b] >= 0 && p[b] <= Tk, "{}: key_lengths[{}] = {} outside [0, {}]", op, b, p[b],
                 Tk);
}

// Batched GEMM on one path; strides 0 broadcast an operand.
void gemm_on(Path path, Device dev, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
             double alpha, const Tensor& A, int64_t lda, int64_t sa, const Tensor& B, int64_t ldb,
             int64_t sb, double beta, Tensor& C, int64_t ldc, int64_t sc, int64_t batch) {
  switch (path) {
    case Path::kCpuF32:
      cpu::sgemm_batched(ta, tb, M, N, K, static_cast<float>(alpha), A.data<float>(), lda, sa,
                         B.data<float>(), ldb, sb, static_cast<float>(beta), C.data<float>(), ldc,
                         sc, batch);
      return;
    case Path::kCpuF64:
      for (int64_t i = 0; i < batch; ++i)
        ref::gemm<double>(ta, tb, M, N, K, alpha, A.data<double>() + i * sa, lda,
                          B.data<double>() + i * sb, ldb, beta, C.data<double>() + i * sc, ldc);
      return;
    case Path::kCudaF32:
#ifdef ATTEND_WITH_CUDA
      cuda::sgemm_batched(dev.index, ta, tb, M, N, K, static_cast<float>(alpha), A.data<float>(),
                          lda, sa, B.data<float>(), ldb, sb, static_cast<float>(beta),
                          C.data<float>(), ldc, sc, batch);
      return;
#endif
      break;
  }
  (void)dev;
  ATTEND_FAIL("gemm: unsupported path");
}

}  // namespace

// ============================================================================ matmul, linear

Tensor matmul(const Tensor& a_in, const Tensor& b_in, bool ta, bool tb) {
  constexpr std::string_view op = "matmul";
  check_float(op, "a", a_in);
  check_float(op, "b", b_in);
  check_same_dtype(op, a_in, b_in);
  check_same_device(op, a_in, b_in);
  ATTEND_CHECK(a_in.dim() >= 2 && b_in.dim() >= 2, "matmul: operands need >= 2 dimensions, got {} "
               "and {}", shape_str(a_in.shape()), shape_str(b_in.shape()));
  const Tensor a = a_in.contiguous(), b = b_in.contiguous();
  const int64_t M = ta ? a.size(-1) : a.size(-2), Ka = ta ? a.size(-2) : a.size(-1);
  const int64_t Kb = tb ? b.size(-1) : b.size(-2), N = tb ? b.size(-2) : b.size(-1);
  ATTEND_CHECK(Ka == Kb, "matmul: inner dimensions differ: a {} (trans {}) vs b {} (trans {})",
               shape_str(a.shape()), ta, shape_str(b.shape()), tb);
  Shape batch_shape(a.shape().begin(), a.shape().end() - 2);
  const int64_t batch = shape_numel(batch_shape);
  const bool b_shared = b.dim() == 2;
  if (!b_shared) {
    Shape bb(b.shape().begin(), b.shape().end() - 2);
    ATTEND_CHECK(bb == batch_shape, "matmul: batch dimensions differ: a {} vs b {}",
                 shape_str(a.shape()), shape_str(b.shape()));
  }
  Shape out_shape = batch_shape;
  out_shape.push_back(M);
  out_shape.push_back(N);
  Tensor c = Tensor::empty(out_shape, a.dtype(), a.device());
  gemm_on(path_of(op, a), a.device(), ta, tb, M, N, Ka, 1.0, a, a.size(-1), M * Ka, b, b.size(-1),
          b_shared ? 0 : Ka * N, 0.0, c, N, M * N, batch);
  return c;
}

MatmulGrads matmul_backward(const Tensor& dc, const Tensor& a, const Tensor& b, bool ta,
                            bool tb) {
  check_float("matmul_backward", "dc", dc);
  if (b.dim() == 2 && a.dim() > 2) {
    // b is shared by every batch entry, so its gradient sums over the batch. Fold the batch into
    // the rows (a transposed is first made explicit) and reuse the 2-D rule.
    if (ta) {
      const Tensor at = a.transpose(-1, -2).contiguous();
      MatmulGrads g = matmul_backward(dc, at, b, false, tb);
      g.da = g.da.transpose(-1, -2).contiguous();
      return g;
    }
    const Tensor a2 = a.contiguous().reshape({-1, a.size(-1)});
    const Tensor dc2 = dc.contiguous().reshape({-1, dc.size(-1)});
    MatmulGrads g = matmul_backward(dc2, a2, b, false, tb);
    g.da = g.da.reshape(a.shape());
    return g;
  }
  // C = op(A) op(B):  dA = dC op(B)^T mapped back through op;  dB likewise.
  MatmulGrads g;
  if (!ta && !tb) {
    g.da = matmul(dc, b, false, true);
    g.db = matmul(a, dc, true, false);
  } else if (!ta && tb) {
    g.da = matmul(dc, b, false, false);
    g.db = matmul(dc, a, true, false);
  } else if (ta && !tb) {
    g.da = matmul(b, dc, false, true);
    g.db = matmul(a, dc, false, false);
  } else {
    g.da = matmul(b, dc, true, true);
    g.db = matmul(dc, a, true, true);
  }
  return g;
}

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias) {
  constexpr std::string_view op = "linear";
  check_float(op, "x", x);
  check_float(op, "weight", w);
  check_same_dtype(op, x, w);
  check_same_device(op, x, w);
  check_dim(op, "weight", w, 2);
  ATTEND_CHECK(x.dim() >= 1 && x.size(-1) == w.size(1),
               "linear: input {} does not match weight {} (expected last dim {})",
               shape_str(x.shape()), shape_str(w.shape()), w.size(1));
  if (bias.defined()) {
    check_same_dtype(op, x, bias);
    check_same_device(op, x, bias);
    ATTEND_CHECK(bias.dim() == 1 && bias.size(0) == w.size(0),
                 "linear: bias {} does not match weight {}", shape_str(bias.shape()),
                 shape_str(w.shape()));
  }
  const int64_t K = w.size(1), N = w.size(0), R = rows_of(x);
  const Tensor xc = x.contiguous(), wc = w.contiguous();
  Shape out_shape = x.shape();
  out_shape.back() = N;
  Tensor y = Tensor::empty(out_shape, x.dtype(), x.device());
  const Path p = path_of(op, x);
  gemm_on(p, x.device(), false, true, R, N, K, 1.0, xc, K, 0, wc, K, 0, 0.0, y, N, 0, 1);
  if (bias.defined()) {
    const Tensor bc = bias.contiguous();
    switch (p) {
      case Path::kCpuF32: cpu::bias_add(y.data<float>(), bc.data<float>(), y.data<float>(), R, N); break;
      case Path::kCpuF64: ref::bias_add(y.data<double>(), bc.data<double>(), y.data<double>(), R, N); break;
      case Path::kCudaF32: unsupported("linear (bias)", x);
    }
  }
  return y;
}

LinearGrads linear_backward(const Tensor& dy_in, const Tensor& x_in, const Tensor& w_in,
                            bool has_bias) {
  constexpr std::string_view op = "linear_backward";
  check_float(op, "dy", dy_in);
  check_same_dtype(op, dy_in, x_in);
  const int64_t K = w_in.size(1), N = w_in.size(0), R = rows_of(x_in);
  ATTEND_CHECK(dy_in.size(-1) == N && rows_of(dy_in) == R,
               "linear_backward: dy {} does not match input {} and weight {}",
               shape_str(dy_in.shape()), shape_str(x_in.shape()), shape_str(w_in.shape()));
  const Tensor dy = dy_in.contiguous(), x = x_in.contiguous(), w = w_in.contiguous();
  LinearGrads g;
  g.dx = Tensor::empty(x.shape(), x.dtype(), x.device());
  g.dw = Tensor::empty(w.shape(), w.dtype(), w.device());
  const Path p = path_of(op, x);
  gemm_on(p, x.device(), false, false, R, K, N, 1.0, dy, N, 0, w, K, 0, 0.0, g.dx, K, 0, 1);
  gemm_on(p, x.device(), true, false, N, K, R, 1.0, dy, N, 0, x, K, 0, 0.0, g.dw, K, 0, 1);
  if (has_bias) g.dbias = sum_rows(dy);
  return g;
}

// ============================================================================ elementwise

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
      if (kind == Binary::kAdd) cpu::add(pa, pb, py, n);
      else if (kind == Binary::kMul) cpu::mul(pa, pb, py, n);
      else ref::sub(pa, pb, py, n);
      break;
    }
    case Path::kCpuF64: {
      const double *pa = a.data<double>(), *pb = b.data<double>();
      double* py = y.data<double>();
      if (kind == Binary::kAdd) ref::add(pa, pb, py, n);
      else if (kind == Binary::kMul) ref::mul(pa, pb, py, n);
      else ref::sub(pa, pb, py, n);
      break;
    }
    case Path::kCudaF32:
#ifdef ATTEND_WITH_CUDA
      if (kind == Binary::kAdd) {
        cuda::add(a.device().index, a.data<float>(), b.data<float>(), y.data<float>(), n);
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
    if (kind == Unary::kExp) ref::exp(px, py, n);
    else if (kind == Unary::kLog) ref::log(px, py, n);
    else ref::rsqrt(px, py, n);
  };
  if (cpu_path(op, x) == Path::kCpuF32) run(x.data<float>(), y.data<float>());
  else run(x.data<double>(), y.data<double>());
  return y;
}
}  // namespace

Tensor add(const Tensor& a, const Tensor& b) { return binary("add", Binary::kAdd, a, b); }
Tensor sub(const Tensor& a, const Tensor& b) { return binary("sub", Binary::kSub, a, b); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary("mul", Binary::kMul, a, b); }
Tensor exp(const Tensor& x) { return unary("exp", Unary::kExp, x); }
Tensor log(const Tensor& x) { return unary("log", Unary::kLog, x); }
Tensor rsqrt(const Tensor& x) { return unary("rsqrt", Unary::kRsqrt, x); }

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
    case Path::kCpuF32: cpu::accumulate(x.data<float>(), y.data<float>(), y.numel()); break;
    case Path::kCpuF64: ref::accumulate(x.data<double>(), y.data<double>(), y.numel()); break;
    case Path::kCudaF32:
#ifdef ATTEND_WITH_CUDA
      cuda::add(y.device().index, y.data<float>(), x.data<float>(), y.data<float>(), y.numel());
      break;
#endif
      unsupported(op, y);
  }
}

void scale_(Tensor& x, double alpha) {
  constexpr std::string_view op = "scale_";
  check_float(op, "x", x);
  ATTEND_CHECK(x.is_contiguous(), "scale_: {} must be contiguous", shape_str(x.shape()));
  if (cpu_path(op, x) == Path::kCpuF32) ref::scale(x.data<float>(), x.numel(), static_cast<float>(alpha));
  else ref::scale(x.data<double>(), x.numel(), alpha);
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
  if (cpu_path(op, dy) == Path::kCpuF32) cpu::sum_rows(dy.data<float>(), db.data<float>(), R, C);
  else ref::sum_rows(dy.data<double>(), db.data<double>(), R, C);
  return db;
}

Tensor relu(const Tensor& x_in) {
  constexpr std::string_view op = "relu";
  check_float(op, "x", x_in);
  const Tensor x = x_in.contiguous();
  Tensor y = like(x);
  switch (path_of(op, x)) {
    case Path::kCpuF32: cpu::relu(x.data<float>(), y.data<float>(), x.numel()); break;
    case Path::kCpuF64: ref::relu(x.data<double>(), y.data<double>(), x.numel()); break;
    case Path::kCudaF32:
#ifdef ATTEND_WITH_CUDA
      cuda::relu(x.device().index, x.data<float>(), y.data<float>(), x.numel());
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
      cuda::relu_backward(x.device().index, x.data<float>(), dy.data<float>(), dx.data<float>(),
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

// ============================================================================ reductions

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

// ============================================================================ softmax family

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
  if (cpu_path(op, x) == Path::kCpuF32) cpu::softmax(x.data<float>(), y.data<float>(), d, km);
  else ref::softmax(x.data<double>(), y.data<double>(), d, km);
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

// ============================================================================ layer norm

LayerNormOut layer_norm(const Tensor& x_in, const Tensor& residual, const Tensor& gamma,
                        const Tensor& beta, double eps) {
  constexpr std::string_view op = "layer_norm";
  check_float(op, "x", x_in);
  check_same_dtype(op, x_in, gamma);
  check_same_dtype(op, x_in, beta);
  ATTEND_CHECK(x_in.dim() >= 1, "layer_norm: expected at least 1 dimension, got {}",
               shape_str(x_in.shape()));
  const int64_t C = x_in.size(-1), R = rows_of(x_in);
  ATTEND_CHECK(gamma.dim() == 1 && gamma.size(0) == C && beta.shape() == gamma.shape(),
               "layer_norm: expected gamma and beta of shape [{}] for input {}, got {} and {}", C,
               shape_str(x_in.shape()), shape_str(gamma.shape()), shape_str(beta.shape()));
  ATTEND_CHECK(eps > 0.0, "layer_norm: eps must be positive, got {}", eps);
  if (residual.defined()) {
    check_same_dtype(op, x_in, residual);
    check_same_shape(op, x_in, residual);
  }
  const Tensor x = x_in.contiguous();
  const Tensor r = residual.defined() ? residual.contiguous() : Tensor();
  const Tensor g = gamma.contiguous(), b = beta.contiguous();
  LayerNormOut out;
  out.y = like(x);
  out.sum = residual.defined() ? like(x) : x;
  out.mean = Tensor::empty({R}, x.dtype(), x.device());
  out.rstd = Tensor::empty({R}, x.dtype(), x.device());
  if (cpu_path(op, x) == Path::kCpuF32) {
    cpu::layer_norm(x.data<float>(), r.defined() ? r.data<float>() : nullptr, g.data<float>(),
                    b.data<float>(), out.y.data<float>(),
                    r.defined() ? out.sum.data<float>() : nullptr, out.mean.data<float>(),
                    out.rstd.data<float>(), R, C, eps);
  } else {
    ref::layer_norm(x.data<double>(), r.defined() ? r.data<double>() : nullptr, g.data<double>(),
                    b.data<double>(), out.y.data<double>(),
                    r.defined() ? out.sum.data<double>() : nullptr, out.mean.data<double>(),
                    out.rstd.data<double>(), R, C, eps);
  }
  return out;
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
  out.dbeta = Tensor::empty({C}, dy.dtype(), dy.device());
  if (cpu_path(op, dy) == Path::kCpuF32)
    cpu::layer_norm_backward(dy.data<float>(), saved.sum.data<float>(), g.data<float>(),
                             saved.mean.data<float>(), saved.rstd.data<float>(),
                             out.dx.data<float>(), out.dgamma.data<float>(),
                             out.dbeta.data<float>(), R, C);
  else
    ref::layer_norm_backward(dy.data<double>(), saved.sum.data<double>(), g.data<double>(),
                             saved.mean.data<double>(), saved.rstd.data<double>(),
                             out.dx.data<double>(), out.dgamma.data<double>(),
                             out.dbeta.data<double>(), R, C);
  return out;
}

// ============================================================================ embedding

namespace {
void check_ids(std::string_view op, const Tensor& ids, int64_t V) {
  check_dtype(op, "ids", ids, DType::kI32);
  check_cpu(op, ids);
  const Tensor c = ids.contiguous();
  const int32_t* p = c.data<int32_t>();
  for (int64_t i = 0; i < c.numel(); ++i)
    ATTEND_CHECK(p[i] >= 0 && p[i] < V, "{}: id {} at position {} outside the vocabulary [0, {})",
                 op, p[i], i, V);
}
}  // namespace

Tensor embedding(const Tensor& ids_in, const Tensor& weight) {
  constexpr std::string_view op = "embedding";
  check_float(op, "weight", weight);
  check_dim(op, "weight", weight, 2);
  check_ids(op, ids_in, weight.size(0));
  const Tensor ids = ids_in.contiguous(), w = weight.contiguous();
  const int64_t D = w.size(1), n = ids.numel();
  Shape s = ids.shape();
  s.push_back(D);
  Tensor out = Tensor::empty(s, w.dtype(), w.device());
  if (cpu_path(op, w) == Path::kCpuF32)
    cpu::embedding(ids.data<int32_t>(), w.data<float>(), out.data<float>(), n, D);
  else
    ref::embedding(ids.data<int32_t>(), w.data<double>(), out.data<double>(), n, D);
  return out;
}

void embedding_backward(const Tensor& ids_in, const Tensor& dout_in, Tensor& dweight) {
  constexpr std::string_view op = "embedding_backward";
  check_float(op, "dweight", dweight);
  check_dim(op, "dweight", dweight, 2);
  check_ids(op, ids_in, dweight.size(0));
  check_same_dtype(op, dout_in, dweight);
  Shape expect = ids_in.shape();
  expect.push_back(dweight.size(1));
  ATTEND_CHECK(dout_in.shape() == expect, "embedding_backward: dout {} does not match ids {} and "
               "width {}", shape_str(dout_in.shape()), shape_str(ids_in.shape()), dweight.size(1));
  ATTEND_CHECK(dweight.is_contiguous(), "embedding_backward: dweight must be contiguous");
  const Tensor ids = ids_in.contiguous(), dout = dout_in.contiguous();
  if (cpu_path(op, dweight) == Path::kCpuF32)
    cpu::embedding_backward(ids.data<int32_t>(), dout.data<float>(), dweight.data<float>(),
                            ids.numel(), dweight.size(1));
  else
    ref::embedding_backward(ids.data<int32_t>(), dout.data<double>(), dweight.data<double>(),
                            ids.numel(), dweight.size(1));
}

// ============================================================================ attention

namespace {
kernels::AttnDims check_attention(std::string_view op, const Tensor& q_in, const Tensor& k_in,
                                  const Tensor& v_in, const AttentionMask& mask,
                                  const Tensor& kv_rows = {}) {
  check_float(op, "q", q_in);
  check_same_dtype(op, q_in, k_in);
  check_same_dtype(op, q_in, v_in);
  check_same_device(op, q_in, k_in);
  check_same_device(op, q_in, v_in);
  check_dim(op, "q", q_in, 4);
  check_dim(op, "k", k_in, 4);
  check_dim(op, "v", v_in, 4);
  ATTEND_CHECK(k_in.shape() == v_in.shape(), "{}: k {} and v {} must have the same shape", op,
               shape_str(k_in.shape()), shape_str(v_in.shape()));
  ATTEND_CHECK((kv_rows.defined() || q_in.size(0) == k_in.size(0)) &&
                   q_in.size(1) == k_in.size(1),
               "{}: q {} and k {} must agree in batch and heads", op, shape_str(q_in.shape()),
               shape_str(k_in.shape()));
  ATTEND_CHECK(q_in.size(3) == k_in.size(3), "{}: head width of q {} differs from k {}", op,
               shape_str(q_in.shape()), shape_str(k_in.shape()));
  kernels::AttnDims d{q_in.size(0), q_in.size(1), q_in.size(2), k_in.size(2), q_in.size(3)};
  check_mask(op, mask, d.B, d.Tk);
  if (kv_rows.defined()) {
    check_dtype(op, "kv_rows", kv_rows, DType::kI32);
    check_cpu(op, kv_rows);
    ATTEND_CHECK(kv_rows.dim() == 1 && kv_rows.size(0) == d.B && kv_rows.is_contiguous(),
                 "{}: kv_rows must be a contiguous [{}] (the batch of q), got {}", op, d.B,
                 shape_str(kv_rows.shape()));
    const int32_t* r = kv_rows.data<int32_t>();
    for (int64_t b = 0; b < d.B; ++b)
      ATTEND_CHECK(r[b] >= 0 && r[b] < k_in.size(0),
                   "{}: kv_rows[{}] = {} outside [0, {}) (the batch of k {})", op, b, r[b],
                   k_in.size(0), shape_str(k_in.shape()));
    d.kv_rows = r;
    d.Bkv = k_in.size(0);
  }
  return d;
}
}  // namespace

AttentionOut attention(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in,
                       const AttentionMask& mask, double scale, const Tensor& kv_rows) {
  constexpr std::string_view op = "attention";
  const kernels::AttnDims d = check_attention(op, q_in, k_in, v_in, mask, kv_rows);
  const Tensor q = q_in.contiguous(), k = k_in.contiguous(), v = v_in.contiguous();
  AttentionOut out;
  out.out = like(q);
  out.lse = Tensor::empty({d.B, d.H, d.Tq}, q.dtype(), q.device());
  const kernels::Mask km = to_kernel_mask(mask);
  if (cpu_path(op, q) == Path::kCpuF32)
    cpu::flash_attention<float>(q.data<float>(), k.data<float>(), v.data<float>(),
                                out.out.data<float>(), out.lse.data<float>(), d, km, scale);
  else
    cpu::flash_attention<double>(q.data<double>(), k.data<double>(), v.data<double>(),
                                 out.out.data<double>(), out.lse.data<double>(), d, km, scale);
  return out;
}

AttentionGrads attention_backward(const Tensor& dout_in, const Tensor& q_in, const Tensor& k_in,
                                  const Tensor& v_in, const AttentionOut& saved,
                                  const AttentionMask& mask, double scale) {
  constexpr std::string_view op = "attention_backward";
  const kernels::AttnDims d = check_attention(op, q_in, k_in, v_in, mask);
  check_same_dtype(op, dout_in, q_in);
  check_same_shape(op, dout_in, q_in);
  check_same_shape(op, saved.out, q_in);
  ATTEND_CHECK(saved.lse.shape() == Shape({d.B, d.H, d.Tq}),
               "attention_backward: lse {} does not match q {}", shape_str(saved.lse.shape()),
               shape_str(q_in.shape()));
  const Tensor dout = dout_in.contiguous(), q = q_in.contiguous(), k = k_in.contiguous(),
               v = v_in.contiguous(), o = saved.out.contiguous(), lse = saved.lse.contiguous();
  AttentionGrads g{like(q), like(k), like(v)};
  const kernels::Mask km = to_kernel_mask(mask);
  if (cpu_path(op, q) == Path::kCpuF32)
    cpu::flash_attention_backward<float>(q.data<float>(), k.data<float>(), v.data<float>(),
                                         o.data<float>(), lse.data<float>(), dout.data<float>(),
                                         g.dq.data<float>(), g.dk.data<float>(),
                                         g.dv.data<float>(), d, km, scale);
  else
    cpu::flash_attention_backward<double>(q.data<double>(), k.data<double>(), v.data<double>(),
                                          o.data<double>(), lse.data<double>(),
                                          dout.data<double>(), g.dq.data<double>(),
                                          g.dk.data<double>(), g.dv.data<double>(), d, km, scale);
  return g;
}

ReferenceAttentionOut attention_reference(const Tensor& q_in, const Tensor& k_in,
                                          const Tensor& v_in, const AttentionMask& mask,
                                          double scale) {
  constexpr std::string_view op = "attention_reference";
  const kernels::AttnDims d = check_attention(op, q_in, k_in, v_in, mask);
  const Tensor q = q_in.contiguous(), k = k_in.contiguous(), v = v_in.contiguous();
  ReferenceAttentionOut out;
  out.out = like(q);
  out.probs = Tensor::empty({d.B, d.H, d.Tq, d.Tk}, q.dtype(), q.device());
  const kernels::Mask km = to_kernel_mask(mask);
  if (cpu_path(op, q) == Path::kCpuF32)
    cpu::attention(q.data<float>(), k.data<float>(), v.data<float>(), out.out.data<float>(),
                   out.probs.data<float>(), d, km, scale);
  else
    ref::attention(q.data<double>(), k.data<double>(), v.data<double>(), out.out.data<double>(),
                   out.probs.data<double>(), d, km, scale);
  return out;
}

AttentionGrads attention_reference_backward(const Tensor& dout_in, const Tensor& q_in,
                                            const Tensor& k_in, const Tensor& v_in,
                                            const Tensor& probs, double scale) {
  constexpr std::string_view op = "attention_reference_backward";
  check_float(op, "dout", dout_in);
  check_same_shape(op, dout_in, q_in);
  const kernels::AttnDims d{q_in.size(0), q_in.size(1), q_in.size(2), k_in.size(2), q_in.size(3)};
  ATTEND_CHECK(probs.shape() == Shape({d.B, d.H, d.Tq, d.Tk}),
               "{}: probs {} do not match q {} and k {}", op, shape_str(probs.shape()),
               shape_str(q_in.shape()), shape_str(k_in.shape()));
  const Tensor dout = dout_in.contiguous(), q = q_in.contiguous(), k = k_in.contiguous(),
               v = v_in.contiguous(), p = probs.contiguous();
  AttentionGrads g{like(q), like(k), like(v)};
  if (cpu_path(op, q) == Path::kCpuF32) {
    Tensor scratch = Tensor::empty(p.shape(), DType::kF32);
    cpu::attention_backward(q.data<float>(), k.data<float>(), v.data<float>(), p.data<float>(),
                            dout.data<float>(), g.dq.data<float>(), g.dk.data<float>(),
                            g.dv.data<float>(), scratch.data<float>(), d, scale);
  } else {
    ref::attention_backward(q.data<double>(), k.data<double>(), v.data<double>(), p.data<double>(),
                            dout.data<double>(), g.dq.data<double>(), g.dk.data<double>(),
                            g.dv.data<double>(), d, scale);
  }
  return g;
}

// ============================================================================ loss

CrossEntropyOut cross_entropy(const Tensor& logits_in, const Tensor& targets_in,
                              const CrossEntropyConfig& config, Reduction reduction) {
  constexpr std::string_view op = "cross_entropy";
  check_float(op, "logits", logits_in);
  check_dim(op, "logits", logits_in, 2);
  check_dtype(op, "targets", targets_in, DType::kI32);
  check_cpu(op, targets_in);
  ATTEND_CHECK(targets_in.dim() == 1 && targets_in.size(0) == logits_in.size(0),
               "cross_entropy: targets {} do not match logits {}", shape_str(targets_in.shape()),
               shape_str(logits_in.shape()));
  ATTEND_CHECK(config.label_smoothing >= 0.0 && config.label_smoothing < 1.0,
               "cross_entropy: label_smoothing must be in [0, 1), got {}", config.label_smoothing);
  const int64_t N = logits_in.size(0), V = logits_in.size(1);
  const Tensor logits = logits_in.contiguous(), targets = targets_in.contiguous();
  const int32_t* t = targets.data<int32_t>();
  CrossEntropyOut out;
  for (int64_t i = 0; i < N; ++i) {
    if (t[i] == config.ignore_index) continue;
    ATTEND_CHECK(t[i] >= 0 && t[i] < V, "cross_entropy: target {} at position {} outside [0, {})",
                 t[i], i, V);
    ++out.tokens;
  }
  out.normaliser = reduction == Reduction::kMean ? static_cast<double>(std::max<int64_t>(out.tokens, 1)) : 1.0;
  out.lse = Tensor::empty({N}, logits.dtype(), logits.device());
  Tensor per_row = Tensor::empty({N}, logits.dtype(), logits.device());
  out.loss = Tensor::empty({}, logits.dtype(), logits.device());
  double total = 0.0;
  if (cpu_path(op, logits) == Path::kCpuF32) {
    cpu::cross_entropy(logits.data<float>(), t, per_row.data<float>(), out.lse.data<float>(), N, V,
                       config);
    for (int64_t i = 0; i < N; ++i) total += per_row.data<float>()[i];
    out.loss.data<float>()[0] = static_cast<float>(total / out.normaliser);
  } else {
    ref::cross_entropy(logits.data<double>(), t, per_row.data<double>(), out.lse.data<double>(), N,
                       V, config);
    for (int64_t i = 0; i < N; ++i) total += per_row.data<double>()[i];
    out.loss.data<double>()[0] = total / out.normaliser;
  }
  return out;
}

Tensor cross_entropy_backward(double dloss, const Tensor& logits_in, const Tensor& targets_in,
                              const CrossEntropyOut& saved, const CrossEntropyConfig& config) {
  constexpr std::string_view op = "cross_entropy_backward";
  check_float(op, "logits", logits_in);
  const int64_t N = logits_in.size(0), V = logits_in.size(1);
  const Tensor logits = logits_in.contiguous(), targets = targets_in.contiguous();
  Tensor d = like(logits);
  const double scale = dloss / saved.normaliser;
  if (cpu_path(op, logits) == Path::kCpuF32)
    cpu::cross_entropy_backward(logits.data<float>(), targets.data<int32_t>(),
                                saved.lse.data<float>(), d.data<float>(), N, V, config,
                                static_cast<float>(scale));
  else
    ref::cross_entropy_backward(logits.data<double>(), targets.data<int32_t>(),
                                saved.lse.data<double>(), d.data<double>(), N, V, config, scale);
  return d;
}

// ============================================================================ optimizer

void adam_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v,
                 const AdamConfig& config, int64_t step) {
  constexpr std::string_view op = "adam_update";
  check_float(op, "param", param);
  for (const Tensor* t : {&grad, static_cast<const Tensor*>(&m), static_cast<const Tensor*>(&v)}) {
    check_same_dtype(op, param, *t);
    check_same_shape(op, param, *t);
    check_same_device(op, param, *t);
  }
  ATTEND_CHECK(param.is_contiguous() && m.is_contiguous() && v.is_contiguous(),
               "adam_update: param {} and its moments must be contiguous", shape_str(param.shape()));
  ATTEND_CHECK(step >= 1, "adam_update: step must be >= 1, got {}", step);
  const Tensor g = grad.contiguous();
  if (cpu_path(op, param) == Path::kCpuF32)
    cpu::adam(param.data<float>(), g.data<float>(), m.data<float>(), v.data<float>(),
              param.numel(), config, step);
  else
    ref::adam(param.data<double>(), g.data<double>(), m.data<double>(), v.data<double>(),
              param.numel(), config, step);
}

const char* cpu_gemm_library_name() { return cpu::gemm_library_name(cpu::gemm_library()); }

}  // namespace attend::ops
