// Launch shapes of the CUDA kernels: plain C++ (no CUDA headers; ATTEND_HD where kernels call it),
// so the CPU-only build unit-tests them (tests/gpu/test_cuda_shapes.cpp) and the kernels use
// exactly what is tested.
#pragma once
#include <algorithm>
#include <cstdint>

#include "core/host_device.h"

namespace attend::cuda {

/// Threads per block of the elementwise kernels.
constexpr int kThreads = 256;
/// Most blocks an elementwise launch gets; a grid-stride loop covers the rest.
constexpr int64_t kMaxBlocks = 65535 * 8;

/// Blocks for n elements, one per thread (at least 1, at most kMaxBlocks).
inline int blocks_for(int64_t n, int threads = kThreads) {
  const int64_t b = (n + threads - 1) / threads;
  return static_cast<int>(std::clamp<int64_t>(b, 1, kMaxBlocks));
}

/// Threads of a block that reduces one row of `cols` values: a multiple of 32 (whole warps,
/// as block_sum needs), at least one warp, at most 1024, about one value per thread for short
/// rows and up to 1024 threads striding longer ones.
inline int row_threads(int64_t cols) {
  const int64_t warps = std::clamp<int64_t>((cols + 31) / 32, 1, 32);
  return static_cast<int>(warps * 32);
}

/// A fixed split of n items into parts of consecutive items, independent of the device: the
/// partial results of a deterministic reduction (each part summed in order by one block, then
/// the parts summed in order). parts = min(n, max_parts), each `per_part` items, the last one
/// shorter.
struct Partition {
  int64_t parts = 1, per_part = 0;
  ATTEND_HD int64_t begin(int64_t p) const { return p * per_part; }
  ATTEND_HD int64_t end(int64_t p, int64_t n) const {
    return (p + 1) * per_part < n ? (p + 1) * per_part : n;
  }
};
inline Partition partition(int64_t n, int64_t max_parts) {
  if (n <= 0) return {1, 0};
  const int64_t per = (n + max_parts - 1) / max_parts;
  return {(n + per - 1) / per, per};
}
/// Parts of the deterministic reductions (sum_squares, layer norm's dgamma/dbeta).
constexpr int64_t kReduceParts = 256;

/// Elements a strided-batched GEMM operand spans in memory: `batch` matrices `stride` apart,
/// each `rows` rows of `cols` elements `ld` apart (stride 0: one matrix shared by the batch).
inline int64_t operand_span(int64_t rows, int64_t cols, int64_t ld, int64_t stride, int64_t batch) {
  if (rows == 0 || cols == 0 || batch == 0) return 0;
  return (batch - 1) * stride + (rows - 1) * ld + cols;
}

/// The fused attention kernels (attention.cu): a block of kAttnWarps warps takes kAttnWarps rows
/// (queries in the forward and dq pass, keys in the dk/dv pass), one warp per row, and walks the
/// other side in tiles of kAttnTile rows staged in shared memory, one per lane. A row's width is
/// split over the lanes, at most kAttnMaxDh (kAttnMaxDh / 32 values per lane).
constexpr int kAttnWarps = 4, kAttnTile = 32, kAttnMaxDh = 128;
/// Shared-memory row stride: one float of padding, so that the lanes reading one column of 32
/// different rows hit 32 different banks.
ATTEND_HD inline int64_t attn_smem_stride(int64_t Dh) { return Dh + 1; }
/// Floats of shared memory per block: two tiles (K and V, or Q and dO) and one row per warp.
inline int64_t attn_smem_floats(int64_t Dh) {
  return (2 * kAttnTile + kAttnWarps) * attn_smem_stride(Dh);
}
/// Blocks along the rows of one head: every row is one warp's, the last block partly idle.
inline int64_t attn_row_blocks(int64_t rows) { return (rows + kAttnWarps - 1) / kAttnWarps; }
/// The first tile that can hold a visible (query, key) pair for keys from j_first on, under a
/// causal mask whose query i sits at key position i + query_offset: queries below
/// j_first - query_offset see none of those keys. Tiles start at multiples of kAttnTile.
ATTEND_HD inline int64_t attn_causal_first_query_tile(int64_t j_first, int64_t query_offset) {
  const int64_t i = j_first > query_offset ? j_first - query_offset : 0;
  return i / kAttnTile * kAttnTile;
}

}  // namespace attend::cuda
