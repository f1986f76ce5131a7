// Device services used by Tensor: byte copies between host and devices, the CUDA caching
// allocator and device queries. Without ATTEND_CUDA the CUDA entry points throw attend::Error.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/allocator.h"
#include "core/types.h"

namespace attend {

/// Copies n bytes between any two devices (synchronous).
void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t n);

/// Fills n bytes with zero on any device.
void zero_bytes(void* dst, Device device, size_t n);

/// Number of visible CUDA devices; 0 when built without CUDA or when no driver/device exists.
int cuda_device_count();

/// True when this build contains the CUDA backend.
bool built_with_cuda();

/// The caching allocator of CUDA device `index`: freed blocks are kept in size-bucketed free
/// lists and reused, so steady-state steps make no cudaMalloc/cudaFree calls.
Allocator* cuda_allocator(int index);

/// The device named by `text` ("cpu", "cuda" = "cuda:0", "cuda:N"), checked against this build
/// and machine: an attend::Error names `what` (a flag or key) and what is missing -- a CUDA
/// backend in the build, a CUDA device on the machine, or device N.
Device parse_device(const std::string& text, const std::string& what);

/// Blocks until all work queued on the device is done.
void cuda_synchronize(int index);

#ifdef ATTEND_WITH_CUDA
/// dst (contiguous, on device d) = the strided view of src on the same device: `shape` and
/// `strides` (in elements of `elem_size` bytes; at most kMaxGatherDims dimensions, as merged by
/// Tensor::contiguous) are the view's. Queued on the thread's stream.
constexpr size_t kMaxGatherDims = 8;
void cuda_gather_strided(void* dst, const void* src, Device d, const Shape& shape,
                         const std::vector<int64_t>& strides, size_t elem_size);
#endif

/// A CUDA stream of one device (non-blocking with respect to the default stream), destroyed
/// with the object. Queue work on it with StreamScope (core/context.h). Without the CUDA
/// backend, or without the device, construction throws attend::Error.
class CudaStream {
 public:
  explicit CudaStream(int device);
  ~CudaStream();
  CudaStream(const CudaStream&) = delete;
  CudaStream& operator=(const CudaStream&) = delete;
  void* handle() const { return handle_; }
  int device() const { return device_; }
  /// Blocks until the work queued on this stream is done.
  void synchronize() const;

 private:
  int device_;
  void* handle_ = nullptr;
};

}  // namespace attend
