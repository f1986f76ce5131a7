// Host-side device services. The CUDA parts live in cuda_runtime.cpp; this file supplies the
// CPU paths and, in CPU-only builds, the CUDA entry points that report the missing backend.
#include "core/device.h"

#include <cstring>

#include "core/error.h"

namespace attend {

#ifdef ATTEND_WITH_CUDA
void cuda_copy_bytes(void* dst, Device dd, const void* src, Device sd, size_t n);
void cuda_zero_bytes(void* dst, Device d, size_t n);
#endif

void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t n) {
  if (n == 0) return;
  if (dst_device.is_cpu() && src_device.is_cpu()) {
    std::memcpy(dst, src, n);
    return;
  }
#ifdef ATTEND_WITH_CUDA
  cuda_copy_bytes(dst, dst_device, src, src_device, n);
#else
  ATTEND_FAIL("copy {} -> {}: this build has no CUDA backend (configure with -DATTEND_CUDA=ON)",
              src_device, dst_device);
#endif
}

void zero_bytes(void* dst, Device device, size_t n) {
  if (n == 0) return;
  if (device.is_cpu()) {
    std::memset(dst, 0, n);
    return;
  }
#ifdef ATTEND_WITH_CUDA
  cuda_zero_bytes(dst, device, n);
#else
  ATTEND_FAIL("zero on {}: this build has no CUDA backend", device);
#endif
}

#ifndef ATTEND_WITH_CUDA
int cuda_device_count() { return 0; }
bool built_with_cuda() { return false; }
Allocator* cuda_allocator(int index) {
  ATTEND_FAIL("cuda_allocator({}): this build has no CUDA backend (configure with -DATTEND_CUDA=ON)",
              index);
}
void cuda_synchronize(int) {}
CudaStream::CudaStream(int device) : device_(device) {
  ATTEND_FAIL("CudaStream({}): this build has no CUDA backend (configure with -DATTEND_CUDA=ON)",
              device);
}
CudaStream::~CudaStream() = default;
void CudaStream::synchronize() const {}
#endif

}  // namespace attend
