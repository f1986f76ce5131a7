// Which family of hand-written kernels runs (see vec_math.h).
#include <atomic>
#include <cstdlib>
#include <string>

#include "core/error.h"
#include "kernels/cpu/vec_math.h"

namespace attend::cpu {
namespace {

constexpr int kUnset = -1;
std::atomic<int> chosen{kUnset};

Isa from_environment() {
  const char* env = std::getenv("ATTEND_ISA");
  if (env == nullptr || *env == '\0') return cpu_isa();
  const std::string v = env;
  Isa isa = Isa::kPortable;
  if (v == "avx512") isa = Isa::kAvx512;
  else if (v == "avx2") isa = Isa::kAvx2;
  else ATTEND_CHECK(v == "portable", "ATTEND_ISA={}: expected portable, avx2 or avx512", v);
  ATTEND_CHECK(isa <= cpu_isa(), "ATTEND_ISA={}: this CPU runs at most {}", v,
               isa_name(cpu_isa()));
  return isa;
}

}  // namespace

Isa cpu_isa() {
  static const Isa best = __builtin_cpu_supports("avx512f") ? Isa::kAvx512
                          : __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")
                              ? Isa::kAvx2
                              : Isa::kPortable;
  return best;
}

Isa kernel_isa() {
  int v = chosen.load(std::memory_order_relaxed);
  if (v == kUnset) {
    v = static_cast<int>(from_environment());
    chosen.store(v, std::memory_order_relaxed);
  }
  return static_cast<Isa>(v);
}

void set_kernel_isa(Isa isa) {
  ATTEND_CHECK(isa <= cpu_isa(), "kernels: {} requested, this CPU runs at most {}", isa_name(isa),
               isa_name(cpu_isa()));
  chosen.store(static_cast<int>(isa), std::memory_order_relaxed);
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kAvx512: return "avx512";
    case Isa::kAvx2: return "avx2";
    default: return "portable";
  }
}

}  // namespace attend::cpu
