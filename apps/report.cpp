// The report `attend info` prints and `attend.info()` returns (report.h).
#include "apps/report.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <string>

#include "core/cpu_info.h"
#include "core/device.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "dist/communicator.h"
#include "ops/ops.h"

namespace attend::apps {
namespace {

// The first executable `name` on PATH, or "" (what a shell would run for `mpirun`).
std::string on_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "";
  for (size_t start = 0; start <= dirs.size();) {
    const size_t end = std::min(dirs.find(':', start), dirs.size());
    const std::string dir = dirs.substr(start, end - start);
    const std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return "";
}

}  // namespace

std::string info_report() {
  std::string out;
  out += attend::format("attend 0.1.0\nthreads: {}\ngemm: {}\ncuda: {}, {} device(s)\n",
                        num_threads(), ops::cpu_gemm_description(),
                        built_with_cuda() ? "built" : "not built", cuda_device_count());
  // What this CPU has, and which precisions attend runs on it: fp32 everywhere; bf16 weight
  // storage (f32 arithmetic) for `generate --precision bf16` where AVX-512 runs its kernel;
  // bf16 products for training where oneDNN has a native kernel (AMX or AVX-512 BF16); int8
  // products everywhere (our AVX2 kernel, oneDNN's for large products with VNNI or AMX).
  const CpuInfo& cpu = cpu_info();
  out += attend::format("cpu: {}\ncpu features: {}\n",
                        cpu.brand.empty() ? "(no brand string)" : cpu.brand, cpu_feature_line(cpu));
  out += attend::format(
      "precisions: fp32; bf16 weights (generate --precision bf16): {}; bf16 products "
      "(train.precision bf16): {} (oneDNN {})\n",
      ops::bf16_weights_supported() ? "yes" : "no (needs avx512f)",
      ops::bf16_products_native() ? "yes" : "no (needs amx_bf16 or avx512_bf16)",
      ops::bf16_products_kernel());
  out += attend::format("int8 products (--precision int8, attend quantize): yes: {}\n",
                        ops::int8_products_kernel());
  out += attend::format("attention (fused): {}\ndecoding products (x W^T, <= 32 rows): {}\n",
                        ops::attention_kernel(), ops::decoding_gemm_kernel());
  // MPI is reported without initialising it (info never starts communication).
  const std::string mpirun = on_path("mpirun");
  out += attend::format(
      "mpi: {}{}\nmpirun: {}\nnccl: {}\n", dist::mpi_library_version(),
      dist::launched_by_mpi() ? " (this process was started by mpirun)" : "",
      mpirun.empty() ? "not found on PATH: install openmpi-bin to start several ranks" : mpirun,
      dist::nccl_library_version());
  return out;
}

}  // namespace attend::apps
