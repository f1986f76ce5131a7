// The machine's measured fp32 peak: a register-only FMA loop on every pool thread.
#pragma once
#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>

namespace attend::bench {

/// Measured fp32 GFLOP/s of independent FMA chains on all threads of the pool (best of 8).
double measured_fma_peak_gflops();

/// A field of /proc/self/status in KiB ("VmHWM:" peak resident, "VmRSS:" current); -1 if absent.
inline long status_kib(const char* key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  const size_t n = std::strlen(key);
  while (std::getline(f, line))
    if (line.compare(0, n, key) == 0) return std::stol(line.substr(n));
  return -1;
}

}  // namespace attend::bench
