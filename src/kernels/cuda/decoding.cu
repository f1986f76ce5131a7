// Decoding-step ops on CUDA: the key/value cache moves (any element type, copied in units of the
// element size), the top-k of each logits row with its log-sum-exp, and the small index ops.
// The cache moves take indices the ops layer has checked on the host (a decoding step reads
// them back anyway); top-k reads banned columns from device memory.
#include "kernels/cuda/launch.cuh"

namespace attend::cuda {
namespace {

template <typename T>
__global__ void write_positions_kernel(T* dst, const T* src, const int32_t* rows,
                                       const int32_t* offsets, int64_t n, int64_t G, int64_t C,
                                       int64_t t, int64_t W) {
  ATTEND_GRID_LOOP(e, n * G * t * W) {
    const int64_t w = e % W, j = e / W % t, g = e / (W * t) % G, i = e / (W * t * G);
    dst[((rows[i] * G + g) * C + offsets[i] + j) * W + w] = src[e];
  }
}

template <typename T>
__global__ void copy_positions_kernel(T* x, const int32_t* from, const int32_t* to,
                                      const int32_t* lengths, int64_t n, int64_t G, int64_t C,
                                      int64_t W) {
  ATTEND_GRID_LOOP(e, n * G * C * W) {
    const int64_t w = e % W, j = e / W % C, g = e / (W * C) % G, i = e / (W * C * G);
    if (j >= lengths[i]) continue;
    x[((to[i] * G + g) * C + j) * W + w] = x[((from[i] * G + g) * C + j) * W + w];
  }
}

/// Runs f<T>() for the unsigned type T of `bytes` bytes (1, 2, 4 or 8).
template <typename F>
void by_element_size(int64_t bytes, F f) {
  switch (bytes) {
    case 1:
      return f(uint8_t{});
    case 2:
      return f(uint16_t{});
    case 4:
      return f(uint32_t{});
    case 8:
      return f(uint64_t{});
    default:
      throw_error(format("cuda cache move: element size {} is not 1, 2, 4 or 8 bytes", bytes),
                  __FILE__, __LINE__);
  }
}

/// (value, column) ordered as the CPU's top_k: larger value first, then lower column.
__device__ bool better(float v, int32_t c, float bv, int32_t bc) {
  return v > bv || (v == bv && c < bc);
}

/// The best (value, column) of the block, every thread's candidate given; column -1: none.
__device__ void block_best(float* v, int32_t* c) {
  __shared__ float sv[32];
  __shared__ int32_t sc[32];
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, *v, o);
    const int32_t oc = __shfl_xor_sync(0xffffffffu, *c, o);
    if (oc >= 0 && (*c < 0 || better(ov, oc, *v, *c))) {
      *v = ov;
      *c = oc;
    }
  }
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  __syncthreads();
  if (lane == 0) {
    sv[warp] = *v;
    sc[warp] = *c;
  }
  __syncthreads();
  *v = lane < warps ? sv[lane] : 0.f;
  *c = lane < warps ? sc[lane] : -1;
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, *v, o);
    const int32_t oc = __shfl_xor_sync(0xffffffffu, *c, o);
    if (oc >= 0 && (*c < 0 || better(ov, oc, *v, *c))) {
      *v = ov;
      *c = oc;
    }
  }
}

// One block per row: k passes, each taking the best column ranked below the previous pick
// (the CPU's order, so equal values come out lower column first); then, when asked, the row's
// log-sum-exp over every column.
__global__ void top_k_kernel(const float* x, int64_t V, int64_t k, const int32_t* banned,
                             int64_t nbanned, const int32_t* row_banned, float* values,
                             int32_t* indices, int32_t* counts, float* lse) {
  const int64_t r = blockIdx.x;
  const float* row = x + r * V;
  const int32_t extra = row_banned ? row_banned[r] : -1;
  float prev_v = INFINITY;
  int32_t prev_c = -1;
  int32_t found = 0;
  for (int64_t t = 0; t < k; ++t) {
    float bv = 0.f;
    int32_t bc = -1;
    for (int64_t c = threadIdx.x; c < V; c += blockDim.x) {
      const auto col = static_cast<int32_t>(c);
      const float v = row[c];
      if (prev_c >= 0 && !better(prev_v, prev_c, v, col)) continue;  // taken already
      bool skip = col == extra;
      for (int64_t b = 0; b < nbanned && !skip; ++b) skip = banned[b] == col;
      if (skip) continue;
      if (bc < 0 || better(v, col, bv, bc)) {
        bv = v;
        bc = col;
      }
    }
    block_best(&bv, &bc);
    if (bc < 0) break;  // the same for every thread: no column left
    if (threadIdx.x == 0) {
      values[r * k + t] = bv;
      indices[r * k + t] = bc;
    }
    prev_v = bv;
    prev_c = bc;
    ++found;
  }
  if (threadIdx.x == 0) {
    counts[r] = found;
    for (int64_t t = found; t < k; ++t) {
      values[r * k + t] = 0.f;
      indices[r * k + t] = -1;
    }
  }
  if (!lse) return;
  float mx = -INFINITY;
  for (int64_t c = threadIdx.x; c < V; c += blockDim.x) mx = fmaxf(mx, row[c]);
  mx = block_max(mx);
  float sum = 0;
  for (int64_t c = threadIdx.x; c < V; c += blockDim.x) sum += expf(row[c] - mx);
  sum = block_sum(sum);
  if (threadIdx.x == 0) lse[r] = mx + logf(sum);
}

}  // namespace

void write_positions(Queue q, void* cache, const void* src, const int32_t* rows,
                     const int32_t* offsets, int64_t n, int64_t groups, int64_t capacity, int64_t t,
                     int64_t width, int64_t elem_bytes) {
  const int64_t total = n * groups * t * width;
  if (total == 0) return;
  use_device(q);
  by_element_size(elem_bytes, [&](auto zero) {
    using T = decltype(zero);
    write_positions_kernel<T><<<blocks_for(total), kThreads, 0, stream_of(q)>>>(
        static_cast<T*>(cache), static_cast<const T*>(src), rows, offsets, n, groups, capacity, t,
        width);
  });
  check_launch("write_positions");
}

void copy_positions(Queue q, void* cache, const int32_t* from, const int32_t* to,
                    const int32_t* lengths, int64_t n, int64_t groups, int64_t capacity,
                    int64_t width, int64_t elem_bytes) {
  const int64_t total = n * groups * capacity * width;
  if (total == 0) return;
  use_device(q);
  by_element_size(elem_bytes, [&](auto zero) {
    using T = decltype(zero);
    copy_positions_kernel<T><<<blocks_for(total), kThreads, 0, stream_of(q)>>>(
        static_cast<T*>(cache), from, to, lengths, n, groups, capacity, width);
  });
  check_launch("copy_positions");
}

void top_k(Queue q, const float* x, int64_t n, int64_t V, int64_t k, const int32_t* banned,
           int64_t nbanned, const int32_t* row_banned, float* values, int32_t* indices,
           int32_t* counts, float* lse) {
  if (n == 0) return;
  use_device(q);
  top_k_kernel<<<static_cast<unsigned>(n), row_threads(V), 0, stream_of(q)>>>(
      x, V, k, banned, nbanned, row_banned, values, indices, counts, lse);
  check_launch("top_k");
}

void pick(Queue q, const float* x, int64_t V, const int32_t* rows, const int32_t* cols, int64_t m,
          float* out) {
  for_each(q, m, "pick",
           [=] __device__(int64_t i) { out[i] = x[static_cast<int64_t>(rows[i]) * V + cols[i]]; });
}

void iota(Queue q, int32_t* out, int64_t rows, int64_t cols) {
  for_each(q, rows * cols, "iota",
           [=] __device__(int64_t e) { out[e] = static_cast<int32_t>(e % cols); });
}

void add_index(Queue q, const int32_t* x, int32_t k, int32_t* out, int64_t n) {
  for_each(q, n, "add_index", [=] __device__(int64_t i) { out[i] = x[i] + k; });
}

}  // namespace attend::cuda
