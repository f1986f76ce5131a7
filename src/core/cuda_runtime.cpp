// CUDA runtime services: the caching device allocator, copies and device queries.
// Compiled only with ATTEND_CUDA=ON.
#include <cuda_runtime.h>

#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "core/caching_pool.h"
#include "core/context.h"
#include "core/cuda_check.h"
#include "core/device.h"
#include "core/error.h"

namespace attend {
namespace {

/// The device's memory through a CachingPool (core/caching_pool.h): blocks are reused only by
/// work on the stream they were allocated on (the thread's current stream, core/context.h).
/// Memory returns to the driver only on out-of-memory retries and at process exit.
class CudaCachingAllocator final : public Allocator {
 public:
  explicit CudaCachingAllocator(int index)
      : index_(index),
        pool_(
            format("cuda:{}", index),
            [index](size_t n) -> void* {
              ATTEND_CUDA_CHECK(cudaSetDevice(index));
              void* p = nullptr;
              if (cudaMalloc(&p, n) != cudaSuccess) {
                (void)cudaGetLastError();  // out of memory: the pool retries, then reports
                return nullptr;
              }
              return p;
            },
            [](void* p) { cudaFree(p); }) {}
  void* allocate(size_t bytes) override {
    return pool_.allocate(bytes, current_context().cuda_stream);
  }
  void deallocate(void* p, size_t) override { pool_.deallocate(p); }
  Device device() const override { return Device::cuda(index_); }

 private:
  int index_;
  CachingPool pool_;
};

}  // namespace

int cuda_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return n;
}

bool built_with_cuda() { return true; }

Allocator* cuda_allocator(int index) {
  static std::mutex mu;
  static std::vector<std::unique_ptr<CudaCachingAllocator>> allocators;
  std::lock_guard<std::mutex> lock(mu);
  ATTEND_CHECK(index >= 0 && index < cuda_device_count(), "cuda_allocator: no CUDA device {}",
               index);
  if (allocators.size() <= static_cast<size_t>(index)) allocators.resize(index + 1);
  if (!allocators[index]) allocators[index] = std::make_unique<CudaCachingAllocator>(index);
  return allocators[index].get();
}

void cuda_synchronize(int index) {
  ATTEND_CUDA_CHECK(cudaSetDevice(index));
  ATTEND_CUDA_CHECK(cudaDeviceSynchronize());
}

CudaStream::CudaStream(int device) : device_(device) {
  ATTEND_CHECK(device >= 0 && device < cuda_device_count(), "CudaStream: no CUDA device {}",
               device);
  ATTEND_CUDA_CHECK(cudaSetDevice(device));
  cudaStream_t s = nullptr;
  ATTEND_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  handle_ = s;
}

CudaStream::~CudaStream() {
  if (handle_) cudaStreamDestroy(static_cast<cudaStream_t>(handle_));
}

void CudaStream::synchronize() const {
  ATTEND_CUDA_CHECK(cudaStreamSynchronize(static_cast<cudaStream_t>(handle_)));
}

void cuda_copy_bytes(void* dst, Device dd, const void* src, Device sd, size_t n) {
  cudaMemcpyKind kind = cudaMemcpyDefault;  // unified addressing picks the direction
  if (dd.is_cuda()) ATTEND_CUDA_CHECK(cudaSetDevice(dd.index));
  else if (sd.is_cuda()) ATTEND_CUDA_CHECK(cudaSetDevice(sd.index));
  // On the thread's stream, so a copy sees the work queued before it (a non-blocking stream does
  // not synchronise with the default one); synchronous for the caller.
  const auto stream = static_cast<cudaStream_t>(current_context().cuda_stream);
  ATTEND_CUDA_CHECK(cudaMemcpyAsync(dst, src, n, kind, stream));
  ATTEND_CUDA_CHECK(cudaStreamSynchronize(stream));
}

namespace detail {
cudaError_t gather_strided(void* dst, const void* src, int nd, const int64_t* shape,
                           const int64_t* strides, int64_t n, size_t elem_size, void* stream);
}

void cuda_gather_strided(void* dst, const void* src, Device d, const Shape& shape,
                         const std::vector<int64_t>& strides, size_t elem_size) {
  ATTEND_CHECK(shape.size() <= kMaxGatherDims,
               "contiguous on {}: a view of {} dimensions that cannot be merged (at most {})", d,
               shape.size(), kMaxGatherDims);
  ATTEND_CUDA_CHECK(cudaSetDevice(d.index));
  void* stream = current_context().cuda_stream;
  if (shape.empty()) {  // a single element
    ATTEND_CUDA_CHECK(cudaMemcpyAsync(dst, src, elem_size, cudaMemcpyDeviceToDevice,
                                      static_cast<cudaStream_t>(stream)));
    return;
  }
  const int64_t n = shape_numel(shape);
  if (n == 0) return;
  ATTEND_CUDA_CHECK(detail::gather_strided(dst, src, static_cast<int>(shape.size()), shape.data(),
                                           strides.data(), n, elem_size, stream));
}

void cuda_zero_bytes(void* dst, Device d, size_t n) {
  ATTEND_CUDA_CHECK(cudaSetDevice(d.index));
  ATTEND_CUDA_CHECK(
      cudaMemsetAsync(dst, 0, n, static_cast<cudaStream_t>(current_context().cuda_stream)));
}

}  // namespace attend
