// What `attend info` prints, as text: the Python module's `attend.info()` (and
// `python -m attend`) returns the same report, so both say the same thing from one place.
#pragma once
#include <string>

namespace attend::apps {

/// Version, threads, GEMM library, CUDA, the CPU and the precisions its extensions make native,
/// the kernels chosen, MPI and NCCL: one "key: value" line each.
std::string info_report();

}  // namespace attend::apps
