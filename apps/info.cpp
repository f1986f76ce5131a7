// `attend info`: version, threads, GEMM library and CUDA devices.
#include <cstdio>
#include <memory>

#include "apps/cli.h"
#include "core/device.h"
#include "core/thread_pool.h"
#include "dist/communicator.h"
#include "ops/ops.h"

namespace attend::apps {

void add_info(CLI::App& root, int& exit_code) {
  auto threads = std::make_shared<int>(0);
  CLI::App* c = root.add_subcommand("info", "show threads, GEMM library and CUDA devices");
  c->footer("");
  add_threads_flag(*c, *threads);
  c->callback([threads, &exit_code] {
    apply_threads(*threads);
    std::printf("attend 0.1.0\nthreads: %d\ngemm: %s\ncuda: %s, %d device(s)\n", num_threads(),
                ops::cpu_gemm_library_name(), built_with_cuda() ? "built" : "not built",
                cuda_device_count());
    // MPI is reported without initialising it (info never starts communication).
    std::printf("mpi: %s%s\nnccl: not built (comes with the CUDA backend)\n",
                dist::mpi_library_version().c_str(),
                dist::launched_by_mpi() ? " (this process was started by mpirun)" : "");
    exit_code = 0;
  });
}

}  // namespace attend::apps
