// Shared by the libFuzzer targets: a scratch directory per process (fuzz inputs that are files
// are written there), and the rule every target checks -- bad input may throw attend::Error (or
// the server's ApiError), anything else escaping is a bug and aborts the run.
#pragma once
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

namespace attend::fuzz {

/// A directory of this process's own, created once (under $TMPDIR or /tmp).
inline const std::string& scratch() {
  static const std::string dir = [] {
    const char* tmp = std::getenv("TMPDIR");
    std::string d = std::string(tmp ? tmp : "/tmp") + "/attend-fuzz-" + std::to_string(getpid());
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

/// Writes `bytes` to scratch()/name and returns the path.
inline std::string write(const std::string& name, std::string_view bytes) {
  const std::string path = scratch() + "/" + name;
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return path;
}

}  // namespace attend::fuzz
