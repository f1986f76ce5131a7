// sgemm through OpenBLAS (cblas) or oneDNN (dnnl_sgemm), selected at run time. Both libraries
// thread with OpenMP, whose thread count the pool sets (core/thread_pool.cpp); OpenBLAS also
// keeps a count of its own, which set_blas_threads() keeps equal to the pool size.
#include <cblas.h>
#include <oneapi/dnnl/dnnl.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <tuple>

#include "core/cpu_info.h"
#include "core/error.h"
#include "kernels/cpu/cpu.h"
#include "kernels/cpu/gemm_small.h"

namespace attend {

void set_blas_threads(int n) { openblas_set_num_threads(n); }

namespace cpu {
namespace {

// The library for every product, and whether it was chosen (ATTEND_GEMM, set_gemm_library)
// rather than defaulted: a chosen library runs every product.
struct LibraryChoice {
  GemmLibrary lib;
  bool chosen;
};

LibraryChoice initial_choice() {
  if (const char* s = std::getenv("ATTEND_GEMM")) {
    if (std::strcmp(s, "dnnl") == 0 || std::strcmp(s, "onednn") == 0)
      return {GemmLibrary::kDnnl, true};
    if (std::strcmp(s, "openblas") == 0) return {GemmLibrary::kOpenBLAS, true};
    ATTEND_FAIL("ATTEND_GEMM: expected 'openblas' or 'dnnl', got '{}'", s);
  }
#ifdef ATTEND_GEMM_DEFAULT_OPENBLAS
  return {GemmLibrary::kOpenBLAS, false};
#else
  // faster on our shapes (docs/gemm.md) and detects the CPU itself
  return {GemmLibrary::kDnnl, false};
#endif
}

LibraryChoice& choice() {
  static LibraryChoice c = initial_choice();
  return c;
}

// Whether OpenBLAS runs weight gradients (dy^T x, the TN product) faster than oneDNN: on a CPU
// without AVX-512 whose core OpenBLAS recognises (on cores newer than it knows, such as
// Sapphire Rapids, it falls back to its generic "Prescott" kernels). On the AMD AVX2 host of
// docs/gemm.md, oneDNN 2.6's TN kernels reach 84-168 GFLOP/s where OpenBLAS's reach 179-182.
bool openblas_faster_for_weight_gradients() {
  static const bool yes =
      !cpu_info().avx512f && std::strcmp(openblas_get_corename(), "Prescott") != 0;
  return yes;
}

// The library that runs a product op(A) op(B): a chosen library runs every product; by
// default the weight gradients go to OpenBLAS where it is faster for them.
GemmLibrary library_for(bool ta, bool tb) {
  const LibraryChoice& c = choice();
  if (!c.chosen && ta && !tb && openblas_faster_for_weight_gradients())
    return GemmLibrary::kOpenBLAS;
  return c.lib;
}

// x W^T with 33-512 rows (beam search over a batch while decoding): oneDNN's matmul primitive
// (its brgemm kernels) runs these 1.1-1.4x faster than dnnl_sgemm (docs/gemm.md). A primitive
// is built for each shape the first time (0.15-0.6 ms, JIT) and kept; beyond 512 rows (training
// batches, whose row count changes every step) dnnl_sgemm is as fast and needs no building.
constexpr int64_t kMatmulMaxM = 512;

class MatmulCache {
 public:
  // C [M, N] (row stride ldc) = A [M, K] (row stride lda) B^T, B [N, K] (row stride ldb).
  void run(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
           int64_t ldb, float* C, int64_t ldc) {
    using dnnl::memory;
    const memory::desc a_md({M, K}, memory::data_type::f32, {lda, 1});
    const memory::desc b_md({K, N}, memory::data_type::f32, {1, ldb});
    const memory::desc c_md({M, N}, memory::data_type::f32, {ldc, 1});
    // One product at a time: oneDNN's default build shares one scratchpad between executions,
    // so a primitive must not run in two threads at once (sgemm's callers are sequential; the
    // lock makes a concurrent caller wait instead of corrupting it).
    std::lock_guard<std::mutex> lock(mu_);
    const Key key{M, N, K, lda, ldb, ldc};
    auto it = prims_.find(key);
    if (it == prims_.end()) {
      if (prims_.size() >= kMaxPrimitives) prims_.clear();
      const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a_md, b_md, c_md), engine_);
      it = prims_.emplace(key, dnnl::matmul(pd)).first;
    }
    memory a(a_md, engine_, const_cast<float*>(A)), b(b_md, engine_, const_cast<float*>(B)),
        c(c_md, engine_, C);
    it->second.execute(stream_, {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_DST, c}});
    stream_.wait();
  }

 private:
  using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t>;
  static constexpr size_t kMaxPrimitives = 4096;
  dnnl::engine engine_{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream_{engine_};
  std::mutex mu_;
  std::map<Key, dnnl::matmul> prims_;
};

}  // namespace

void sgemm_nt_matmul(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
                     int64_t ldb, float* C, int64_t ldc) {
  static MatmulCache cache;
  try {
    cache.run(M, N, K, A, lda, B, ldb, C, ldc);
  } catch (const dnnl::error& e) {
    ATTEND_FAIL("sgemm: oneDNN matmul failed (M {} N {} K {}): {}", M, N, K, e.what());
  }
}

GemmLibrary gemm_library() { return choice().lib; }
void set_gemm_library(GemmLibrary lib) { choice() = {lib, true}; }
std::string gemm_description() {
  std::string s = gemm_library_name(gemm_library());
  const GemmLibrary tn = library_for(true, false);
  if (tn != gemm_library()) s += std::string(" (weight gradients: ") + gemm_library_name(tn) + ")";
  return s;
}
const char* gemm_library_name(GemmLibrary lib) {
  return lib == GemmLibrary::kDnnl ? "onednn" : "openblas";
}

void sgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
           int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  if (K == 0) {  // C = beta * C; BLAS libraries disagree on this corner
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = beta == 0.f ? 0.f : beta * C[i * ldc + j];
    return;
  }
  if (sgemm_small_m_applies(ta, tb, M, N, K)) {  // decoding's x W^T: B read in place
    sgemm_small_m(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  if (library_for(ta, tb) == GemmLibrary::kDnnl) {
    if (!ta && tb && M <= kMatmulMaxM && alpha == 1.f && beta == 0.f) {
      sgemm_nt_matmul(M, N, K, A, lda, B, ldb, C, ldc);
      return;
    }
    const dnnl_status_t st =
        dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    ATTEND_CHECK(st == dnnl_success, "sgemm: dnnl_sgemm failed with status {} (M {} N {} K {})",
                 static_cast<int>(st), M, N, K);
    return;
  }
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
              static_cast<blasint>(M), static_cast<blasint>(N), static_cast<blasint>(K), alpha, A,
              static_cast<blasint>(lda), B, static_cast<blasint>(ldb), beta, C,
              static_cast<blasint>(ldc));
}

void sgemm_batched(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                   int64_t lda, int64_t stride_a, const float* B, int64_t ldb, int64_t stride_b,
                   float beta, float* C, int64_t ldc, int64_t stride_c, int64_t batch) {
  // Sequential over the batch: each call is threaded by the BLAS library itself (calling an
  // OpenMP BLAS from several pool threads at once would oversubscribe the cores).
  for (int64_t i = 0; i < batch; ++i)
    sgemm(ta, tb, M, N, K, alpha, A + i * stride_a, lda, B + i * stride_b, ldb, beta,
          C + i * stride_c, ldc);
}

}  // namespace cpu
}  // namespace attend
