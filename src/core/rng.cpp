// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011).
#include "core/rng.h"

#include <cmath>

namespace attend {

double philox_normal(uint64_t seed, uint64_t stream, uint64_t index) {
  const auto r = philox4x32(seed, stream ^ 0x6e6f726d616cULL, index);
  const double u1 = (static_cast<double>(r[0]) + 1.0) * 0x1p-32;  // (0, 1]
  const double u2 = static_cast<double>(r[1]) * 0x1p-32;
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

uint64_t mix_stream(uint64_t a, uint64_t b) {
  uint64_t z = a * 0x9E3779B97F4A7C15ULL + b + 0x632BE59BD9B4E019ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

}  // namespace attend
