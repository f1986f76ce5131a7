// `attend info`: version, threads, the CPU's extensions and the precisions they make native, GEMM
// library, CUDA devices, MPI and NCCL.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "apps/cli.h"
#include "core/cpu_info.h"
#include "core/device.h"
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

void add_info(CLI::App& root, int& exit_code) {
  auto threads = std::make_shared<int>(0);
  CLI::App* c = root.add_subcommand(
      "info", "show threads, CPU features, precisions, GEMM library, CUDA, MPI");
  c->footer("");
  add_threads_flag(*c, *threads);
  c->callback([threads, &exit_code] {
    apply_threads(*threads);
    std::printf("attend 0.1.0\nthreads: %d\ngemm: %s\ncuda: %s, %d device(s)\n", num_threads(),
                ops::cpu_gemm_description().c_str(), built_with_cuda() ? "built" : "not built",
                cuda_device_count());
    // What this CPU has, and which precisions attend runs on it: fp32 everywhere; bf16 weight
    // storage (f32 arithmetic) for `generate --precision bf16` where AVX-512 runs its kernel;
    // bf16 products for training where oneDNN has a native kernel (AMX or AVX-512 BF16); int8
    // products everywhere (our AVX2 kernel, oneDNN's for large products with VNNI or AMX).
    const CpuInfo& cpu = cpu_info();
    std::printf("cpu: %s\ncpu features: %s\n",
                cpu.brand.empty() ? "(no brand string)" : cpu.brand.c_str(),
                cpu_feature_line(cpu).c_str());
    std::printf(
        "precisions: fp32; bf16 weights (generate --precision bf16): %s; bf16 products "
        "(train.precision bf16): %s (oneDNN %s)\n",
        ops::bf16_weights_supported() ? "yes" : "no (needs avx512f)",
        ops::bf16_products_native() ? "yes" : "no (needs amx_bf16 or avx512_bf16)",
        ops::bf16_products_kernel().c_str());
    std::printf("int8 products (--precision int8, attend quantize): yes: %s\n",
                ops::int8_products_kernel().c_str());
    std::printf("attention (fused): %s\ndecoding products (x W^T, <= 32 rows): %s\n",
                ops::attention_kernel().c_str(), ops::decoding_gemm_kernel().c_str());
    // MPI is reported without initialising it (info never starts communication).
    const std::string mpirun = on_path("mpirun");
    std::printf("mpi: %s%s\nmpirun: %s\nnccl: %s\n", dist::mpi_library_version().c_str(),
                dist::launched_by_mpi() ? " (this process was started by mpirun)" : "",
                mpirun.empty() ? "not found on PATH: install openmpi-bin to start several ranks"
                               : mpirun.c_str(),
                dist::nccl_library_version().c_str());
    exit_code = 0;
  });
}

}  // namespace attend::apps
