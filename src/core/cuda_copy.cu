// Strided copies on a CUDA device (Tensor::contiguous of a device view: the head split and merge
// transposes of attention, slices): one thread per element of the contiguous result, which
// finds its source offset from the view's (merged) shape and strides. Plain C++17 with no attend
// headers (nvcc compiles it; core's headers are C++20): cuda_runtime.cpp calls it.
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace attend::detail {
namespace {

constexpr int kMaxDims = 8;  // device.h's kMaxGatherDims

struct View {
  int nd = 0;
  int64_t shape[kMaxDims] = {};
  int64_t strides[kMaxDims] = {};
};

template <typename T>
__global__ void gather_kernel(T* dst, const T* src, View v, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t rem = i, off = 0;
    for (int k = v.nd - 1; k >= 0; --k) {
      off += rem % v.shape[k] * v.strides[k];
      rem /= v.shape[k];
    }
    dst[i] = src[off];
  }
}

template <typename T>
void launch(void* dst, const void* src, const View& v, int64_t n, cudaStream_t stream) {
  constexpr int threads = 256;
  const int64_t blocks = (n + threads - 1) / threads;
  gather_kernel<T><<<static_cast<unsigned>(blocks < 65535 * 8 ? blocks : 65535 * 8), threads, 0,
                     stream>>>(static_cast<T*>(dst), static_cast<const T*>(src), v, n);
}

}  // namespace

/// Queues dst[i] = src[offset of element i of the view] for the n elements of a view of nd
/// (1..8) dimensions; element size 1, 2, 4 or 8. Returns the launch's status (cudaSuccess, or
/// cudaErrorInvalidValue for a size or rank it does not take).
cudaError_t gather_strided(void* dst, const void* src, int nd, const int64_t* shape,
                           const int64_t* strides, int64_t n, size_t elem_size, void* stream) {
  if (nd < 1 || nd > kMaxDims) return cudaErrorInvalidValue;
  View v;
  v.nd = nd;
  for (int k = 0; k < nd; ++k) {
    v.shape[k] = shape[k];
    v.strides[k] = strides[k];
  }
  const auto s = static_cast<cudaStream_t>(stream);
  switch (elem_size) {
    case 1:
      launch<uint8_t>(dst, src, v, n, s);
      break;
    case 2:
      launch<uint16_t>(dst, src, v, n, s);
      break;
    case 4:
      launch<uint32_t>(dst, src, v, n, s);
      break;
    case 8:
      launch<uint64_t>(dst, src, v, n, s);
      break;
    default:
      return cudaErrorInvalidValue;
  }
  return cudaGetLastError();
}

}  // namespace attend::detail
