// Internal to the ops library: the one (device, dtype) dispatch every op goes through, and the
// helpers every op family's file shares (allocation, masks, batched GEMM). Includes the kernel
// headers, so only ops/*.cpp can include it: the layer folders above ops do not contain the
// kernels (CMakeLists.txt, attend_layers).
//
// An op validates its arguments, allocates its results and then calls dispatch() once with the
// kernels it has, one per cell of (device, dtype):
//
//   dispatch(op, x, {.cpu_f32 = [&] { cpu::relu(...); },
//                    .cpu_f64 = [&] { ref::relu(...); },
//                    .cuda_f32 = ATTEND_ON_CUDA([&] { cuda::unary(queue(x), ...); })});
//
// A cell left out has no kernel: dispatch throws "op: not implemented for <device> <dtype>".
// What f32 runs on the CPU is a cpu:: kernel (kernels/cpu/; some are the reference loop on
// purpose and say so there); f64 runs the double-precision reference (kernels/ref/), the oracle.
#pragma once
#include <chrono>
#include <map>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "core/context.h"
#include "core/profile.h"
#include "kernels/cpu/cpu.h"
#include "kernels/cpu/decoding.h"
#include "kernels/cpu/flash_attention.h"
#include "kernels/ref/ref.h"
#include "ops/check.h"
#include "ops/ops.h"
// Declarations only (no CUDA headers): the cuda:: enums name kernels in every build; the calls
// are compiled only with CUDA (ATTEND_ON_CUDA).
#include "kernels/cuda/cuda.h"

namespace attend::ops::detail {

/// One cell's kernel call: a non-owning reference to a callable (a lambda written in the
/// dispatch call's argument list, alive until it returns). Empty: the cell has no kernel.
/// Cells kept beyond one expression must refer to named lambdas that outlive them.
class Kernel {
 public:
  Kernel() = default;
  template <typename F, typename = std::enable_if_t<!std::is_same_v<std::decay_t<F>, Kernel>>>
  Kernel(F&& f)  // NOLINT(google-explicit-constructor): cells are written as lambdas
      : object_(const_cast<void*>(static_cast<const void*>(&f))),
        call_([](void* o) { (*static_cast<std::remove_reference_t<F>*>(o))(); }) {}
  explicit operator bool() const { return call_ != nullptr; }
  void operator()() const { call_(object_); }

 private:
  void* object_ = nullptr;
  void (*call_)(void*) = nullptr;
};

/// The kernels of one op, one per (device, dtype) cell it runs on.
struct Cells {
  Kernel cpu_f32 = {}, cpu_f64 = {}, cpu_bf16 = {}, cpu_i32 = {}, cuda_f32 = {}, cuda_i32 = {};
};

/// The cells of (device, dtype).
enum class Path { kCpuF32, kCpuF64, kCpuBF16, kCpuI32, kCudaF32, kCudaI32 };

/// The cell of `t`; a (device, dtype) that has no cell at all is an error naming the op.
inline Path path_of(std::string_view op, const Tensor& t) {
  if (t.device().is_cpu()) {
    if (t.dtype() == DType::kF32) return Path::kCpuF32;
    if (t.dtype() == DType::kF64) return Path::kCpuF64;
    if (t.dtype() == DType::kBF16) return Path::kCpuBF16;
    if (t.dtype() == DType::kI32) return Path::kCpuI32;
  } else if (t.device().is_cuda()) {
    if (t.dtype() == DType::kF32) return Path::kCudaF32;
    if (t.dtype() == DType::kI32) return Path::kCudaI32;
  }
  unsupported(op, t);
}

/// While a CellProbe is live on a thread, every dispatch on it records which cells its op has
/// (the ops' coverage, read without a device: tests/ops/test_op_table.cpp checks that every op
/// with a CPU f32 kernel has a CUDA f32 one). The kernels still run as usual.
struct CellProbe {
  struct Seen {
    bool cpu_f32 = false, cpu_f64 = false, cpu_bf16 = false, cpu_i32 = false, cuda_f32 = false,
         cuda_i32 = false;
  };
  std::map<std::string, Seen, std::less<>> ops;
  CellProbe() : previous_(current()) { current() = this; }
  ~CellProbe() { current() = previous_; }
  CellProbe(const CellProbe&) = delete;
  CellProbe& operator=(const CellProbe&) = delete;
  static CellProbe*& current() {
    thread_local CellProbe* probe = nullptr;
    return probe;
  }
  void record(std::string_view op, const Cells& c) {
    Seen& s = ops[std::string(op)];
    s.cpu_f32 |= bool(c.cpu_f32), s.cpu_f64 |= bool(c.cpu_f64), s.cpu_bf16 |= bool(c.cpu_bf16);
    s.cpu_i32 |= bool(c.cpu_i32), s.cuda_f32 |= bool(c.cuda_f32), s.cuda_i32 |= bool(c.cuda_i32);
  }

 private:
  CellProbe* previous_;
};

/// Runs the kernel of t's cell; throws attend::Error naming the op, t's device and dtype when
/// that cell has none.
inline void dispatch(std::string_view op, const Tensor& t, const Cells& cells) {
  if (CellProbe* probe = CellProbe::current()) probe->record(op, cells);
  const Kernel* k = nullptr;
  switch (path_of(op, t)) {
    case Path::kCpuF32:
      k = &cells.cpu_f32;
      break;
    case Path::kCpuF64:
      k = &cells.cpu_f64;
      break;
    case Path::kCpuBF16:
      k = &cells.cpu_bf16;
      break;
    case Path::kCpuI32:
      k = &cells.cpu_i32;
      break;
    case Path::kCudaF32:
      k = &cells.cuda_f32;
      break;
    case Path::kCudaI32:
      k = &cells.cuda_i32;
      break;
  }
  if (!*k) unsupported(op, t);
  if (!op_profiling()) return (*k)();
  const auto t0 = std::chrono::steady_clock::now();
  (*k)();
  record_op_time(op, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
}

// A CUDA cell: its kernel call in a CUDA build, no kernel otherwise.
#ifdef ATTEND_WITH_CUDA
#define ATTEND_ON_CUDA(...) __VA_ARGS__
#else
#define ATTEND_ON_CUDA(...) ::attend::ops::detail::Kernel()
#endif
// A CUDA kernel function passed as an argument to a shared helper: itself in a CUDA build,
// nullptr otherwise (the helper's CUDA cell, compiled away, never calls it).
#ifdef ATTEND_WITH_CUDA
#define ATTEND_CUDA_ONLY(...) __VA_ARGS__
#else
#define ATTEND_CUDA_ONLY(...) nullptr
#endif

#ifdef ATTEND_WITH_CUDA
/// The CUDA queue of work on `d`: the thread's current stream (core/context.h).
inline cuda::Queue queue(Device d) { return {d.index, current_context().cuda_stream}; }
inline cuda::Queue queue(const Tensor& t) { return queue(t.device()); }
#endif

#ifdef ATTEND_WITH_CUDA
/// n device ints set to 0, for the first-bad-position reports of CUDA kernels (cuda.h).
inline Tensor device_reports(const Tensor& on, int64_t n) {
  return Tensor::zeros({n}, DType::kI32, on.device());
}
/// The reports read back (waits for the thread's stream).
inline std::vector<int32_t> read_reports(const Tensor& reports) {
  return reports.to(Device::cpu()).to_vector<int32_t>();
}
/// Element i (in row-major order) of an i32 tensor on any device: the value a report names.
inline int32_t index_at(const Tensor& t, int64_t i) {
  return t.reshape({t.numel()}).slice(0, i, i + 1).to(Device::cpu()).to_vector<int32_t>()[0];
}
#endif

inline Tensor like(const Tensor& t) { return Tensor::empty(t.shape(), t.dtype(), t.device()); }

/// The operands of an elementwise or row-wise backward: `saved` (the forward's input or output)
/// and dy checked as a pair (float, same dtype, device and shape), made contiguous, and dx.
struct BackwardOperands {
  Tensor saved, dy, dx;
};
inline BackwardOperands backward_operands(std::string_view op, const Tensor& saved,
                                          const Tensor& dy) {
  check_float(op, "saved", saved);
  check_same_dtype(op, saved, dy);
  check_same_device(op, saved, dy);
  check_same_shape(op, saved, dy);
  BackwardOperands b{saved.contiguous(), dy.contiguous(), Tensor()};
  b.dx = like(b.saved);
  return b;
}

inline int64_t rows_of(const Tensor& t) { return t.dim() == 0 ? 1 : t.numel() / t.size(-1); }
inline int64_t cols_of(const Tensor& t) { return t.dim() == 0 ? 1 : t.size(-1); }

inline kernels::Mask to_kernel_mask(const AttentionMask& m) {
  kernels::Mask km;
  km.causal = m.causal;
  km.query_offset = m.query_offset;
  km.window = m.local ? m.window : -1;
  km.global_tokens = m.local ? m.global_tokens : 0;
  if (m.key_lengths.defined()) km.key_lengths = m.key_lengths.data<int32_t>();
  return km;
}

/// Checks a mask for scores of B rows over Tk keys; key_lengths must live on the device of
/// `data` (the scores or queries) as an i32 [B]. Their values are checked where they can be read
/// without a transfer (on the CPU).
inline void check_mask(std::string_view op, const AttentionMask& m, int64_t B, int64_t Tk,
                       const Tensor& data) {
  if (m.local) {
    ATTEND_CHECK(m.window > 0, "{}: local attention needs a window > 0, got {}", op, m.window);
    ATTEND_CHECK(m.global_tokens >= 0, "{}: global_tokens must be >= 0, got {}", op,
                 m.global_tokens);
  }
  if (!m.key_lengths.defined()) return;
  check_dtype(op, "key_lengths", m.key_lengths, DType::kI32);
  check_same_device(op, m.key_lengths, data);
  ATTEND_CHECK(m.key_lengths.dim() == 1 && m.key_lengths.size(0) == B,
               "{}: key_lengths must have shape [{}] (batch), got {}", op, B,
               shape_str(m.key_lengths.shape()));
  if (!m.key_lengths.device().is_cpu()) return;
  const Tensor kl = m.key_lengths.contiguous();
  const int32_t* p = kl.data<int32_t>();
  for (int64_t b = 0; b < B; ++b)
    ATTEND_CHECK(p[b] >= 0 && p[b] <= Tk, "{}: key_lengths[{}] = {} outside [0, {}]", op, b, p[b],
                 Tk);
}

/// C = alpha op(A) op(B) + beta C for `batch` matrices (strides 0 broadcast an operand), on the
/// cell of C. f32 on the CPU takes bf16 products when the thread's context asks for them.
inline void gemm_on(std::string_view op, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
                    double alpha, const Tensor& A, int64_t lda, int64_t sa, const Tensor& B,
                    int64_t ldb, int64_t sb, double beta, Tensor& C, int64_t ldc, int64_t sc,
                    int64_t batch) {
  const float fa = static_cast<float>(alpha), fb = static_cast<float>(beta);
  dispatch(op, C,
           {.cpu_f32 =
                [&] {
                  if (current_context().products == DType::kBF16) {  // mixed precision
                    cpu::gemm_bf16_batched(ta, tb, M, N, K, fa, A.data<float>(), lda, sa,
                                           B.data<float>(), ldb, sb, fb, C.data<float>(), ldc, sc,
                                           batch);
                    return;
                  }
                  cpu::sgemm_batched(ta, tb, M, N, K, fa, A.data<float>(), lda, sa, B.data<float>(),
                                     ldb, sb, fb, C.data<float>(), ldc, sc, batch);
                },
            .cpu_f64 =
                [&] {
                  for (int64_t i = 0; i < batch; ++i)
                    ref::gemm<double>(ta, tb, M, N, K, alpha, A.data<double>() + i * sa, lda,
                                      B.data<double>() + i * sb, ldb, beta,
                                      C.data<double>() + i * sc, ldc);
                },
            .cuda_f32 = ATTEND_ON_CUDA([&] {
              if (current_context().products == DType::kBF16) {  // mixed precision
                Tensor a16 =
                    Tensor::empty({cuda::operand_span(ta ? K : M, ta ? M : K, lda, sa, batch)},
                                  DType::kBF16, C.device());
                Tensor b16 =
                    Tensor::empty({cuda::operand_span(tb ? N : K, tb ? K : N, ldb, sb, batch)},
                                  DType::kBF16, C.device());
                cuda::gemm_bf16_batched(queue(C), ta, tb, M, N, K, fa, A.data<float>(), lda, sa,
                                        B.data<float>(), ldb, sb, fb, C.data<float>(), ldc, sc,
                                        batch, reinterpret_cast<uint16_t*>(a16.raw_data()),
                                        reinterpret_cast<uint16_t*>(b16.raw_data()));
                return;
              }
              cuda::sgemm_batched(queue(C), ta, tb, M, N, K, fa, A.data<float>(), lda, sa,
                                  B.data<float>(), ldb, sb, fb, C.data<float>(), ldc, sc, batch);
            })});
}

}  // namespace attend::ops::detail
