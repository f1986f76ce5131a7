// What this CPU can run: the instruction-set extensions attend's kernels and oneDNN's choose
// between, read once with CPUID (and, for AMX, whether the kernel lets this process use the
// tile registers). `attend info` prints them with the precisions they make native.
#pragma once
#include <string>

namespace attend {

struct CpuInfo {
  std::string brand;           // CPUID's brand string ("" where the CPU gives none)
  bool avx2 = false;           // the vectorised loops' middle tier
  bool avx512f = false;        // the hand-written AVX-512 kernels (and bf16 weight storage)
  bool avx512bw = false;       // byte/word AVX-512 (bf16 conversion in vectors)
  bool avx512_bf16 = false;    // VDPBF16PS: bf16 dot products with f32 accumulation
  bool avx512_vnni = false;    // VPDPBUSD: int8 dot products with i32 accumulation
  bool amx_tile = false;       // AMX tile registers ...
  bool amx_bf16 = false;       // ... with bf16 tile products
  bool amx_int8 = false;       // ... with int8 tile products
  bool amx_permitted = false;  // the OS granted this process the tile state (Linux >= 5.16)
};

/// This CPU's features (read on the first call; later calls return the same object).
const CpuInfo& cpu_info();

/// One line naming the extensions above that this CPU has and lacks, e.g.
/// "avx2 avx512f avx512bw avx512_bf16 avx512_vnni; no amx".
std::string cpu_feature_line(const CpuInfo& c);

}  // namespace attend
