// The machine's measured fp32 peak: a register-only FMA loop on every pool thread.
#pragma once
#include <cstdint>
#include <cstdlib>
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

/// The value after flag `name` on the command line as an integer / a string (def if absent).
inline int64_t arg(int argc, char** argv, const char* name, int64_t def) {
  for (int i = 1; i + 1 < argc; ++i)
    if (!std::strcmp(argv[i], name)) return std::atoll(argv[i + 1]);
  return def;
}
inline std::string sarg(int argc, char** argv, const char* name, const char* def) {
  for (int i = 1; i + 1 < argc; ++i)
    if (!std::strcmp(argv[i], name)) return argv[i + 1];
  return def;
}

}  // namespace attend::bench
