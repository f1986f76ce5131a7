// Products with bf16 operands and f32 accumulation through oneDNN's matmul primitive: what
// products run as when the thread's context asks for bf16 products (core/context.h). oneDNN
// picks the kernel for the CPU: AMX tiles (avx512_core_amx), AVX-512 BF16 dot products
// (avx512_core_bf16), or, without either, a conversion to f32 -- bf16_products_native() tells.
#include <cstring>
#include <map>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <tuple>
#include <vector>

#include "core/error.h"
#include "core/thread_pool.h"
#include "core/types.h"
#include "kernels/cpu/cpu.h"
#include "kernels/cpu/vec_math.h"

namespace attend::cpu {

ATTEND_MULTIVERSION
void round_to_bf16(const float* x, uint16_t* y, int64_t n) {
  // to_bf16 (core/types.h) without its branch, so that the loop vectorises: round to nearest
  // even, NaN kept a (quiet) NaN.
  for (int64_t i = 0; i < n; ++i) {
    uint32_t u;
    std::memcpy(&u, x + i, 4);
    const bool nan = (u & 0x7fffffffu) > 0x7f800000u;
    const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    y[i] = static_cast<uint16_t>(nan ? ((u >> 16) | 0x40u) : rounded);
  }
}

namespace {

// Rounds the stored matrices X_i [r, c] (leading dimension ld, matrix i at X + i * stride) of
// a batch into dense bf16 [count, r, c], rows split over the pool's threads. Only the elements
// the product reads are converted; a transposed operand keeps its memory order (the matmul
// descriptor's strides say it).
void to_bf16_matrices(const float* X, int64_t ld, int64_t stride, int64_t count, int64_t r,
                      int64_t c, uint16_t* out) {
  parallel_for(count * r, row_grain(c), [&](int64_t begin, int64_t end) {
    if (ld == c && (count == 1 || stride == r * c)) {  // one dense block
      round_to_bf16(X + begin * c, out + begin * c, (end - begin) * c);
      return;
    }
    for (int64_t row = begin; row < end; ++row) {
      const int64_t i = row / r, j = row % r;
      round_to_bf16(X + i * stride + j * ld, out + row * c, c);
    }
  });
}

class Bf16MatmulCache {
 public:
  // C [M, N] (ldc) = op(A) op(B) over `batch` matrices; A's stored matrix is [M, K] or, when
  // ta, [K, M] (dense, bf16), likewise B [K, N] or [N, K]; sb == 0: B is shared.
  // C = alpha * product + beta * C (oneDNN's output scale and sum post-op).
  void run(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const uint16_t* A,
           const uint16_t* B, bool b_shared, float beta, float* C, int64_t ldc, int64_t sc,
           int64_t batch) {
    using dnnl::memory;
    using dt = memory::data_type;
    const memory::dims a_strides = ta ? memory::dims{M * K, 1, M} : memory::dims{M * K, K, 1};
    const memory::dims b_strides = tb ? memory::dims{K * N, 1, K} : memory::dims{K * N, N, 1};
    const memory::desc a_md({batch, M, K}, dt::bf16, a_strides);
    const memory::desc b_md({b_shared ? 1 : batch, K, N}, dt::bf16, b_strides);
    const memory::desc c_md({batch, M, N}, dt::f32, {sc, ldc, 1});
    std::lock_guard<std::mutex> lock(mu_);  // one scratchpad per primitive (see gemm.cpp)
    const Key key{ta, tb, M, N, K, b_shared, ldc, sc, batch, alpha, beta};
    auto it = prims_.find(key);
    if (it == prims_.end()) {
      if (prims_.size() >= kMaxPrimitives) prims_.clear();
      dnnl::primitive_attr attr;
      if (alpha != 1.f) attr.set_output_scales(0, {alpha});
      if (beta != 0.f) {
        dnnl::post_ops po;
        po.append_sum(beta);
        attr.set_post_ops(po);
      }
      const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a_md, b_md, c_md), attr, engine_);
      it = prims_.emplace(key, dnnl::matmul(pd)).first;
    }
    memory a(a_md, engine_, const_cast<uint16_t*>(A)), b(b_md, engine_, const_cast<uint16_t*>(B)),
        c(c_md, engine_, C);
    it->second.execute(stream_, {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_DST, c}});
    stream_.wait();
  }

  // The implementation oneDNN chose for a representative product.
  std::string kernel_name() {
    using dnnl::memory;
    const memory::desc a({256, 256}, memory::data_type::bf16, memory::format_tag::ab);
    const memory::desc c({256, 256}, memory::data_type::f32, memory::format_tag::ab);
    const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a, a, c), engine_);
    return pd.impl_info_str();
  }

 private:
  using Key = std::tuple<bool, bool, int64_t, int64_t, int64_t, bool, int64_t, int64_t, int64_t,
                         float, float>;
  static constexpr size_t kMaxPrimitives = 4096;
  dnnl::engine engine_{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream_{engine_};
  std::mutex mu_;
  std::map<Key, dnnl::matmul> prims_;
};

Bf16MatmulCache& cache() {
  static Bf16MatmulCache c;
  return c;
}

}  // namespace

const std::string& bf16_product_kernel() {
  static const std::string name = [] {
    try {
      return cache().kernel_name();
    } catch (const dnnl::error& e) {
      return std::string("none (") + e.what() + ")";
    }
  }();
  return name;
}

bool bf16_products_native() {
  const std::string& k = bf16_product_kernel();
  return k.find("amx") != std::string::npos || k.find("bf16") != std::string::npos;
}

void gemm_bf16_batched(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha,
                       const float* A, int64_t lda, int64_t sa, const float* B, int64_t ldb,
                       int64_t sb, float beta, float* C, int64_t ldc, int64_t sc, int64_t batch) {
  if (M == 0 || N == 0 || batch == 0) return;
  if (K == 0) {
    for (int64_t i = 0; i < batch; ++i)
      sgemm(ta, tb, M, N, 0, alpha, A, lda, B, ldb, beta, C + i * sc, ldc);
    return;
  }
  // The stored matrices: A is [M, K] (or [K, M] when ta), B [K, N] (or [N, K] when tb).
  const int64_t ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
  const bool b_shared = sb == 0 && batch > 1;
  const int64_t b_count = b_shared ? 1 : batch;
  // The bf16 copies live in per-thread buffers that only grow: no allocation (and no page
  // faults) per product once a step's largest shapes have been seen.
  thread_local std::vector<uint16_t> a16, b16;
  if (a16.size() < static_cast<size_t>(batch * ar * ac)) a16.resize(batch * ar * ac);
  if (b16.size() < static_cast<size_t>(b_count * br * bc)) b16.resize(b_count * br * bc);
  to_bf16_matrices(A, lda, sa, batch, ar, ac, a16.data());
  to_bf16_matrices(B, ldb, sb, b_count, br, bc, b16.data());
  try {
    cache().run(ta, tb, M, N, K, alpha, a16.data(), b16.data(), b_shared, beta, C, ldc,
                batch > 1 ? sc : M * ldc, batch);
  } catch (const dnnl::error& e) {
    ATTEND_FAIL("gemm (bf16 products): oneDNN matmul failed (M {} N {} K {} batch {}): {}", M, N, K,
                batch, e.what());
  }
}

}  // namespace attend::cpu
