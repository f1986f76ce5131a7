// Element types, devices and shapes: the vocabulary shared by every layer, kernels included.
// bf16/f16 are storage types (converted to f32 for arithmetic on the CPU); i8 holds quantized
// values with per-row scales.
#pragma once
#include <cstdint>
#include <cstring>
#include <iosfwd>
#include <string>
#include <vector>

namespace attend {

/// kI8 holds quantized values (ops::quantize_rows: symmetric, one f32 scale per row, kept in
/// a separate tensor); it is not an arithmetic type of its own.
enum class DType : uint8_t { kF32, kF64, kBF16, kF16, kI32, kI8 };

size_t dtype_size(DType t);
/// f32, f64, bf16 or f16.
inline bool is_floating(DType t) {
  return t == DType::kF32 || t == DType::kF64 || t == DType::kBF16 || t == DType::kF16;
}
const char* dtype_name(DType t);
std::ostream& operator<<(std::ostream& os, DType t);

enum class DeviceType : uint8_t { kCPU, kCUDA };

struct Device {
  DeviceType type = DeviceType::kCPU;
  int index = 0;
  static Device cpu() { return {DeviceType::kCPU, 0}; }
  static Device cuda(int i = 0) { return {DeviceType::kCUDA, i}; }
  bool is_cpu() const { return type == DeviceType::kCPU; }
  bool is_cuda() const { return type == DeviceType::kCUDA; }
  bool operator==(const Device&) const = default;
  std::string str() const;
};
std::ostream& operator<<(std::ostream& os, Device d);

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& s);
int64_t shape_numel(const Shape& s);

// ---- 16-bit float storage formats (round to nearest even on the way in).
struct bf16 {
  uint16_t bits = 0;
};
struct f16 {
  uint16_t bits = 0;
};

inline uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float bits_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline bf16 to_bf16(float f) {
  uint32_t u = float_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return bf16{static_cast<uint16_t>((u >> 16) | 0x40)};  // NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return bf16{static_cast<uint16_t>(u >> 16)};
}
inline float from_bf16(bf16 h) { return bits_float(static_cast<uint32_t>(h.bits) << 16); }

f16 to_f16(float f);
float from_f16(f16 h);

}  // namespace attend
