// Counter-based random numbers (Philox4x32-10): the value at (key, counter) is a pure function,
// so dropout masks and initialisations do not depend on thread count, device or call order, and
// resuming a run reproduces them exactly.
#pragma once
#include <array>
#include <cstdint>

#include "core/host_device.h"

namespace attend {

/// One Philox4x32-10 block: four 32-bit outputs for a 64-bit key and a 128-bit counter.
/// Inline: dropout calls it once per four elements in its inner loop.
ATTEND_HD inline std::array<uint32_t, 4> philox4x32(uint64_t key, uint64_t counter_hi,
                                                    uint64_t counter_lo) {
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  uint32_t c0 = static_cast<uint32_t>(counter_lo), c1 = static_cast<uint32_t>(counter_lo >> 32);
  uint32_t c2 = static_cast<uint32_t>(counter_hi), c3 = static_cast<uint32_t>(counter_hi >> 32);
  uint32_t k0 = static_cast<uint32_t>(key), k1 = static_cast<uint32_t>(key >> 32);
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = static_cast<uint64_t>(kM0) * c0;
    const uint64_t p1 = static_cast<uint64_t>(kM1) * c2;
    const uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1 ^ k0;
    const uint32_t n1 = static_cast<uint32_t>(p1);
    const uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c3 ^ k1;
    const uint32_t n3 = static_cast<uint32_t>(p0);
    c0 = n0;
    c1 = n1;
    c2 = n2;
    c3 = n3;
    k0 += kW0;
    k1 += kW1;
  }
  return {c0, c1, c2, c3};
}

/// Uniform float in [0, 1) from 24 random bits.
ATTEND_HD inline float uniform_from_bits(uint32_t x) {
  return static_cast<float>(x >> 8) * 0x1p-24f;
}

/// Uniform in [0, 1) for element `index` of stream `stream` under `seed`.
ATTEND_HD inline float philox_uniform(uint64_t seed, uint64_t stream, uint64_t index) {
  return uniform_from_bits(philox4x32(seed, stream, index >> 2)[index & 3]);
}

/// Standard normal for element `index` (Box-Muller on one Philox block).
double philox_normal(uint64_t seed, uint64_t stream, uint64_t index);

/// Mixes several 64-bit words into one stream id (e.g. (step, op)) -- splitmix64 based.
uint64_t mix_stream(uint64_t a, uint64_t b);

}  // namespace attend
