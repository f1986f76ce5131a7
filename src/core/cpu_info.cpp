// CPUID leaves 0x7 (extended features, sub-leaves 0 and 1) and 0x80000002-4 (brand string).
#include "core/cpu_info.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include <cstring>

namespace attend {
namespace {

bool bit(unsigned word, int b) { return ((word >> b) & 1u) != 0; }

CpuInfo read_cpu_info() {
  CpuInfo c;
#if defined(__x86_64__)
  unsigned a = 0, b = 0, cx = 0, d = 0;
  if (__get_cpuid_count(7, 0, &a, &b, &cx, &d)) {
    c.avx2 = bit(b, 5);
    c.avx512f = bit(b, 16);
    c.avx512bw = bit(b, 30);
    c.avx512_vnni = bit(cx, 11);
    c.amx_bf16 = bit(d, 22);
    c.amx_tile = bit(d, 24);
    c.amx_int8 = bit(d, 25);
    const unsigned max_sub = a;
    if (max_sub >= 1 && __get_cpuid_count(7, 1, &a, &b, &cx, &d)) c.avx512_bf16 = bit(a, 5);
  }
  // The OS must also save the registers: without OS support (XCR0) the flags mean nothing.
  // __builtin_cpu_supports consults XCR0, so it is the authority for the AVX tiers.
  c.avx2 = c.avx2 && __builtin_cpu_supports("avx2");
  c.avx512f = c.avx512f && __builtin_cpu_supports("avx512f");
  c.avx512bw = c.avx512bw && c.avx512f;
  c.avx512_bf16 = c.avx512_bf16 && c.avx512f;
  c.avx512_vnni = c.avx512_vnni && c.avx512f;
  if (c.amx_tile) {
#if defined(SYS_arch_prctl)
    // ARCH_REQ_XCOMP_PERM for XFEATURE_XTILEDATA: granted once per process, idempotent; oneDNN
    // asks the same before it runs an AMX kernel.
    constexpr int kReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
    c.amx_permitted = syscall(SYS_arch_prctl, kReqXcompPerm, kXfeatureXtiledata) == 0;
#endif
  }
  unsigned brand[12] = {};
  if (__get_cpuid(0x80000000u, &a, &b, &cx, &d) && a >= 0x80000004u) {
    for (unsigned leaf = 0; leaf < 3; ++leaf)
      __get_cpuid(0x80000002u + leaf, &brand[leaf * 4], &brand[leaf * 4 + 1], &brand[leaf * 4 + 2],
                  &brand[leaf * 4 + 3]);
    char text[sizeof(brand) + 1] = {};
    std::memcpy(text, brand, sizeof(brand));
    c.brand = text;
    const size_t first = c.brand.find_first_not_of(' ');
    const size_t last = c.brand.find_last_not_of(' ');
    c.brand = first == std::string::npos ? "" : c.brand.substr(first, last - first + 1);
  }
#endif
  return c;
}

}  // namespace

const CpuInfo& cpu_info() {
  static const CpuInfo info = read_cpu_info();
  return info;
}

std::string cpu_feature_line(const CpuInfo& c) {
  std::string has, lacks;
  auto add = [&](bool yes, const char* name) {
    std::string& to = yes ? has : lacks;
    if (!to.empty()) to += ' ';
    to += name;
  };
  add(c.avx2, "avx2");
  add(c.avx512f, "avx512f");
  add(c.avx512bw, "avx512bw");
  add(c.avx512_bf16, "avx512_bf16");
  add(c.avx512_vnni, "avx512_vnni");
  add(c.amx_bf16 && c.amx_tile, "amx_bf16");
  add(c.amx_int8 && c.amx_tile, "amx_int8");
  std::string line = has.empty() ? "none" : has;
  if (!lacks.empty()) line += "; not: " + lacks;
  if (c.amx_tile && !c.amx_permitted) line += " (AMX present, but the OS refused the tile state)";
  return line;
}

}  // namespace attend
