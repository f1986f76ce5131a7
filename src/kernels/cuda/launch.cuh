// What the CUDA kernel files share: launch shapes, the stream of a Queue, grid-stride loops and
// block-wide reductions. Included only by kernels/cuda/*.cu.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "core/cuda_check.h"
#include "kernels/cuda/cuda.h"
#include "kernels/cuda/shapes.h"

namespace attend::cuda {

inline cudaStream_t stream_of(Queue q) { return static_cast<cudaStream_t>(q.stream); }

/// Makes q's device current before a launch.
inline void use_device(Queue q) { ATTEND_CUDA_CHECK(cudaSetDevice(q.device)); }

/// Raises the launch error, if any, as an attend::Error naming the kernel.
inline void check_launch(const char* kernel) {
  const cudaError_t st = cudaGetLastError();
  if (st != cudaSuccess)
    throw_error(format("CUDA launch of {}: {}", kernel, cudaGetErrorString(st)), __FILE__,
                __LINE__);
}

/// Element i's grid-stride loop: every thread of the grid visits i, i + grid size, ...
#define ATTEND_GRID_LOOP(i, n)                                                           \
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)

template <typename F>
__global__ void map_kernel(int64_t n, F f) {
  ATTEND_GRID_LOOP(i, n) f(i);
}

/// Runs f(i) for every i < n on q's stream (f: a __device__ lambda capturing by value).
template <typename F>
void for_each(Queue q, int64_t n, const char* name, F f) {
  if (n == 0) return;
  use_device(q);
  map_kernel<<<blocks_for(n), kThreads, 0, stream_of(q)>>>(n, f);
  check_launch(name);
}

/// *slot = min(*slot, v) over the nonzero values (0: nothing recorded yet): the first bad
/// position + 1 that a kernel reports back (an id or target out of range, a NaN row).
__device__ inline void record_first(int32_t* slot, int32_t v) {
  int32_t old = *slot;
  while (old == 0 || v < old) {
    const int32_t prev = atomicCAS(slot, old, v);
    if (prev == old) return;
    old = prev;
  }
}

/// Position i + 1 as a reported int (saturating).
__device__ inline int32_t report_position(int64_t i) {
  return i >= 0x7ffffffe ? 0x7fffffff : static_cast<int32_t>(i + 1);
}

__device__ inline float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ inline double warp_sum(double v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ inline float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

/// The sum (or max) of v over the block, returned to every thread. blockDim.x must be a
/// multiple of 32 (at most 1024); every thread of the block must call it.
template <typename T>
__device__ inline T block_sum(T v) {
  __shared__ T partial[32];
  v = warp_sum(v);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  __syncthreads();  // partial may still be read by a previous call
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  v = lane < warps ? partial[lane] : T(0);
  return warp_sum(v);
}
__device__ inline float block_max(float v) {
  __shared__ float partial[32];
  v = warp_max(v);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  __syncthreads();
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  v = lane < warps ? partial[lane] : -INFINITY;
  return warp_max(v);
}

}  // namespace attend::cuda
