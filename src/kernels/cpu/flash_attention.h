// Fused exact attention (FlashAttention-2 style) on the CPU, forward and backward, for float
// (AVX-512 micro-kernels when the CPU has them) and double (used by gradcheck). Never forms the
// Tq x Tk score matrix: memory is O((Tq + Tk) * Dh) per head plus one tile per thread.
#pragma once
#include <cstdint>
#include <string>

#include "kernels/common.h"

namespace attend::cpu {

/// Query/key tile sizes: a tile of scores (kTileQ x kTileK) and the Q, K, V, O tiles of a head
/// of width <= 128 fit the L2 cache together.
constexpr int64_t kTileQ = 64, kTileK = 64;
/// The forward walks the key tiles once for up to kMaxGroupQ query tiles of a head; the
/// backward walks the query tiles once for up to kMaxGroupK key tiles.
constexpr int64_t kMaxGroupQ = 4, kMaxGroupK = 4;

/// o = softmax(scale q k^T + bias + mask) v and lse[b, h, i] = log sum_j exp(scale q_i k_j +
/// bias_ij) over the visible keys (-inf for a row with no visible key; its output is 0).
/// q [B, H, Tq, Dh], k and v [B, H, Tk, Dh], o [B, H, Tq, Dh], lse [B, H, Tq].
template <typename T>
void flash_attention(const T* q, const T* k, const T* v, T* o, T* lse, const kernels::AttnDims& d,
                     const kernels::Mask& m, double scale, const kernels::ScoreBias<T>& bias = {});

/// Gradients from the saved output and lse; scores are recomputed tile by tile. dbias (null
/// when not wanted) receives the bias gradient of every (batch, head): [B, H, bias.span].
template <typename T>
void flash_attention_backward(const T* q, const T* k, const T* v, const T* o, const T* lse,
                              const T* dout, T* dq, T* dk, T* dv, const kernels::AttnDims& d,
                              const kernels::Mask& m, double scale,
                              const kernels::ScoreBias<T>& bias = {}, T* dbias = nullptr);

/// The micro-kernels the fused attention runs on this CPU, for reports ("avx2+fma: ...").
std::string attention_kernel_description();

/// True when a query tile [i0, i1) and key tile [j0, j1) can contain a visible score for batch
/// entry b. Skipping the others makes local attention linear in the sequence length.
bool tile_may_be_visible(const kernels::Mask& m, int64_t b, int64_t i0, int64_t i1, int64_t j0,
                         int64_t j1, int64_t Tk);

}  // namespace attend::cpu
