// `attend info`: version, threads, the CPU's extensions and the precisions they make native, GEMM
// library, CUDA devices, MPI and NCCL (apps/report.h says what, once for the CLI and Python).
#include <cstdio>
#include <memory>
#include <string>

#include "apps/cli.h"
#include "apps/report.h"

namespace attend::apps {

void add_info(CLI::App& root, int& exit_code) {
  auto threads = std::make_shared<int>(0);
  CLI::App* c = root.add_subcommand(
      "info", "show threads, CPU features, precisions, GEMM library, CUDA, MPI");
  c->footer("");
  add_threads_flag(*c, *threads);
  c->callback([threads, &exit_code] {
    apply_threads(*threads);
    const std::string report = info_report();
    std::fwrite(report.data(), 1, report.size(), stdout);
    exit_code = 0;
  });
}

}  // namespace attend::apps
