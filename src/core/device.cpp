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

Device parse_device(const std::string& text, const std::string& what) {
  if (text == "cpu") return Device::cpu();
  int index = 0;
  if (text != "cuda") {
    const std::string digits = text.rfind("cuda:", 0) == 0 ? text.substr(5) : std::string();
    ATTEND_CHECK(!digits.empty() && digits.size() <= 4 &&
                     digits.find_first_not_of("0123456789") == std::string::npos,
                 "{}: expected cpu, cuda or cuda:N, got '{}'", what, text);
    index = std::stoi(digits);
  }
  ATTEND_CHECK(built_with_cuda(),
               "{} {}: this build has no CUDA backend (configure with -DATTEND_CUDA=ON, the "
               "preset cuda)",
               what, text);
  const int count = cuda_device_count();
  ATTEND_CHECK(count > 0, "{} {}: no CUDA device on this machine (no driver, or no GPU)", what,
               text);
  ATTEND_CHECK(index < count, "{} {}: this machine has {} CUDA device{} (cuda:0..cuda:{})", what,
               text, count, count == 1 ? "" : "s", count - 1);
  return Device::cuda(index);
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
