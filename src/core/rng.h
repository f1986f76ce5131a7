// Counter-based random numbers (Philox4x32-10): the value at (key, counter) is a pure function,
// so dropout masks and initialisations do not depend on thread count, device or call order, and
// resuming a run reproduces them exactly.
#pragma once
#include <array>
#include <cstdint>

namespace attend {

/// One Philox4x32-10 block: four 32-bit outputs for a 64-bit key and a 128-bit counter.
std::array<uint32_t, 4> philox4x32(uint64_t key, uint64_t counter_hi, uint64_t counter_lo);

/// Uniform float in [0, 1) from 24 random bits.
inline float uniform_from_bits(uint32_t x) { return static_cast<float>(x >> 8) * 0x1p-24f; }

/// Uniform in [0, 1) for element `index` of stream `stream` under `seed`.
inline float philox_uniform(uint64_t seed, uint64_t stream, uint64_t index) {
  return uniform_from_bits(philox4x32(seed, stream, index >> 2)[index & 3]);
}

/// Standard normal for element `index` (Box-Muller on one Philox block).
double philox_normal(uint64_t seed, uint64_t stream, uint64_t index);

/// Mixes several 64-bit words into one stream id (e.g. (step, op)) -- splitmix64 based.
uint64_t mix_stream(uint64_t a, uint64_t b);

}  // namespace attend
