// The small-M product C = alpha * A B^T + beta * C (row-major A [M, K], B [N, K]) that every
// linear layer computes while decoding; sgemm() sends those shapes here (gemm_small.cpp).
#pragma once
#include <cstdint>

namespace attend::cpu {

/// Largest M sgemm sends to sgemm_small_m: above it oneDNN's matmul primitive wins on the
/// decoder's shapes (docs/gemm.md). The kernel itself takes up to 64 rows.
inline constexpr int64_t kSmallM = 32;

/// Whether sgemm sends this product to sgemm_small_m (an AVX-512 CPU, A not transposed,
/// B transposed, 1 <= M <= kSmallM).
bool sgemm_small_m_applies(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K);

/// C = alpha * A B^T + beta * C without packing B; needs AVX-512 (see sgemm_small_m_applies).
void sgemm_small_m(int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                   const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
/// The same with bf16 weights B (raw bf16 bits), widened to f32 exactly as they are read: the
/// weight matrix streams at half the bytes, the arithmetic is the f32 kernel's (same order).
/// Needs AVX-512 (F, as sgemm_small_m); any M >= 1 (M > 64 is slower than widening B and
/// calling sgemm).
void gemm_small_m_bf16w(int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                        int64_t lda, const uint16_t* B, int64_t ldb, float beta, float* C,
                        int64_t ldc);

}  // namespace attend::cpu
