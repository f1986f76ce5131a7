// Internal to the ops library: the (device, dtype) dispatch paths and the helpers every op
// family's file shares (allocation, CPU-only unary/backward/reduction wrappers, masks, batched
// GEMM on a path). Includes the kernel headers, so only ops/*.cpp can include it: the layer
// folders above ops do not contain the kernels (CMakeLists.txt, attend_layers).
#pragma once
#include <string_view>

#include "core/context.h"
#include "kernels/cpu/cpu.h"
#include "kernels/ref/ref.h"
#include "ops/check.h"
#include "ops/ops.h"
#ifdef ATTEND_WITH_CUDA
#include "kernels/cuda/cuda.h"
#endif

namespace attend::ops::detail {

enum class Path { kCpuF32, kCpuF64, kCudaF32 };

inline Path path_of(std::string_view op, const Tensor& t) {
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
inline Path cpu_path(std::string_view op, const Tensor& t) {
  const Path p = path_of(op, t);
  if (p == Path::kCudaF32) unsupported(op, t);
  return p;
}

#ifdef ATTEND_WITH_CUDA
/// The CUDA queue of work on `d`: the thread's current stream (core/context.h).
inline cuda::Queue queue(Device d) { return {d.index, current_context().cuda_stream}; }
inline cuda::Queue queue(const Tensor& t) { return queue(t.device()); }
#endif

inline Tensor like(const Tensor& t) { return Tensor::empty(t.shape(), t.dtype(), t.device()); }

/// y = kernel(x) for CPU-only ops: f32(x, y) or f64(x, y) on contiguous data.
template <typename F32, typename F64>
Tensor unary_cpu(std::string_view op, const Tensor& x_in, F32 f32, F64 f64) {
  check_float(op, "x", x_in);
  const Tensor x = x_in.contiguous();
  Tensor y = like(x);
  if (cpu_path(op, x) == Path::kCpuF32)
    f32(x.data<float>(), y.data<float>(), x);
  else
    f64(x.data<double>(), y.data<double>(), x);
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
  if (cpu_path(op, s) == Path::kCpuF32)
    f32(s.data<float>(), dy.data<float>(), dx.data<float>(), s);
  else
    f64(s.data<double>(), dy.data<double>(), dx.data<double>(), s);
  return dx;
}

inline int64_t rows_of(const Tensor& t) { return t.dim() == 0 ? 1 : t.numel() / t.size(-1); }
inline int64_t cols_of(const Tensor& t) { return t.dim() == 0 ? 1 : t.size(-1); }

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

inline kernels::Mask to_kernel_mask(const AttentionMask& m) {
  kernels::Mask km;
  km.causal = m.causal;
  km.query_offset = m.query_offset;
  km.window = m.local ? m.window : -1;
  km.global_tokens = m.local ? m.global_tokens : 0;
  if (m.key_lengths.defined()) km.key_lengths = m.key_lengths.data<int32_t>();
  return km;
}

inline void check_mask(std::string_view op, const AttentionMask& m, int64_t B, int64_t Tk) {
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
inline void gemm_on(Path path, Device dev, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
                    double alpha, const Tensor& A, int64_t lda, int64_t sa, const Tensor& B,
                    int64_t ldb, int64_t sb, double beta, Tensor& C, int64_t ldc, int64_t sc,
                    int64_t batch) {
  switch (path) {
    case Path::kCpuF32:
      if (current_context().products == DType::kBF16) {  // mixed precision: bf16 operands
        cpu::gemm_bf16_batched(ta, tb, M, N, K, static_cast<float>(alpha), A.data<float>(), lda, sa,
                               B.data<float>(), ldb, sb, static_cast<float>(beta), C.data<float>(),
                               ldc, sc, batch);
        return;
      }
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
      cuda::sgemm_batched(queue(dev), ta, tb, M, N, K, static_cast<float>(alpha), A.data<float>(),
                          lda, sa, B.data<float>(), ldb, sb, static_cast<float>(beta),
                          C.data<float>(), ldc, sc, batch);
      return;
#endif
      break;
  }
  (void)dev;
  ATTEND_FAIL("gemm: unsupported path");
}

}  // namespace attend::ops::detail
