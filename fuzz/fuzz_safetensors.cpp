// libFuzzer target: safetensors files (io/safetensors.h), the weights of every model directory.
// Any bytes either parse into tensors whose data lies inside the file or throw attend::Error.
#include <cstdint>
#include <string>

#include "core/error.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  try {
    const attend::io::SafeTensors st = attend::io::parse_safetensors(bytes, "fuzz.safetensors");
    // Touch every element: ASan catches a tensor that points outside the file's bytes.
    for (const auto& [name, t] : st.tensors) {
      const auto* p = static_cast<const unsigned char*>(t.raw_data());
      unsigned sum = 0;
      for (size_t i = 0; i < t.nbytes(); ++i) sum += p[i];
      (void)sum;
    }
  } catch (const attend::Error&) {
  }
  return 0;
}
