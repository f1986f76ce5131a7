// Branch-free scalar maths written so that GCC vectorises it inside multiversioned loops.
#pragma once
#include <cstdint>
#include <cstring>

// Compile the marked function for AVX-512, AVX2 and baseline x86-64; the loader picks one by
// CPU *features* ("arch=..." clones would test the CPU model, and miss newer CPUs). Sanitizer
// builds compile one version: the clones' resolvers run before the sanitizer runtime starts, and
// ThreadSanitizer's instrumentation of them crashes at load time.
#if defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#define ATTEND_MULTIVERSION __attribute__((target_clones("default", "avx2", "avx512f")))
#else
#define ATTEND_MULTIVERSION
#endif

namespace attend::cpu {

/// The families of hand-written kernels, lowest first.
enum class Isa { kPortable, kAvx2, kAvx512 };
/// The best family this CPU runs: AVX-512 (avx512f), AVX2 (avx2 and fma), or portable loops.
Isa cpu_isa();
/// The family the kernels use: cpu_isa(), or a lower one chosen for a comparison or a test
/// (set_kernel_isa, or the environment variable ATTEND_ISA=portable|avx2|avx512 read on first
/// use; one the CPU lacks is an error naming it). Loops compiled with target_clones
/// (ATTEND_MULTIVERSION) follow the CPU, not this choice.
Isa kernel_isa();
void set_kernel_isa(Isa isa);
const char* isa_name(Isa isa);

/// Whether the hand-written AVX-512 kernels run.
inline bool has_avx512() { return kernel_isa() == Isa::kAvx512; }
/// Whether the hand-written AVX2 + FMA kernels run (AVX-512 ones take precedence where both do).
inline bool has_avx2_fma() { return kernel_isa() >= Isa::kAvx2; }

/// Runs the kernels of `isa` while it lives (tests of every family the host has).
class IsaScope {
 public:
  explicit IsaScope(Isa isa) : saved_(kernel_isa()) { set_kernel_isa(isa); }
  ~IsaScope() { set_kernel_isa(saved_); }
  IsaScope(const IsaScope&) = delete;
  IsaScope& operator=(const IsaScope&) = delete;

 private:
  Isa saved_;
};

/// e^x with ~2 ulp relative error for x in [-87, 88]; exactly 0 below -87.3 (so -inf gives 0,
/// as masked scores need) and clamped above 88.
/// Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2, then a degree-6 Taylor polynomial.
/// (always_inline: a multiversioned caller may not inline a default-target callee otherwise.)
__attribute__((always_inline)) inline float fast_exp(float x) {
  const bool underflow = x < -87.3f;
  x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
  const float n = __builtin_floorf(x * 1.44269504088896341f + 0.5f);  // vroundps when vectorised
  const float r = (x - n * 0.693145751953125f) - n * 1.428606765330187e-06f;
  float p = 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t e = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &e, 4);
  return underflow ? 0.0f : p * scale;
}

/// max(x[0:n]) (-inf when n == 0). Sixteen independent lanes make the loop elementwise, so it
/// vectorises to vmaxps without -ffinite-math-only (a max *reduction* would not).
__attribute__((always_inline)) inline float row_max(const float* x, int64_t n) {
  float lane[16];
  for (float& l : lane) l = -__builtin_inff();
  int64_t j = 0;
  for (; j + 16 <= n; j += 16)
    for (int k = 0; k < 16; ++k) lane[k] = x[j + k] > lane[k] ? x[j + k] : lane[k];
  for (; j < n; ++j) lane[0] = x[j] > lane[0] ? x[j] : lane[0];
  float m = lane[0];
  for (int k = 1; k < 16; ++k) m = lane[k] > m ? lane[k] : m;
  return m;
}

}  // namespace attend::cpu
