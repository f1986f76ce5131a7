// Command-line flags of the benchmark programs: "--flag VALUE" pairs from a fixed list, and
// --help. Strict, as a user expects of a tool that prints figures: an unknown flag, a flag
// without its value, a flag given twice or a value that is not a number ("12x", "") stops the
// program (exit 2) with a message naming the flag, instead of running with a default.
#pragma once
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <map>
#include <string>

#include "core/thread_pool.h"

namespace attend::bench {

class Args {
 public:
  /// Reads argv. `usage` is printed on stdout (exit 0) for --help / -h, on stderr (exit 2)
  /// after any error; `program` prefixes the error messages.
  Args(int argc, char** argv, const char* program, const char* usage,
       std::initializer_list<const char*> flags)
      : program_(program), usage_(usage) {
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      if (a == "--help" || a == "-h") {
        std::fputs(usage_, stdout);
        std::exit(0);
      }
      bool known = false;
      for (const char* f : flags) known = known || a == f;
      if (!known) fail("unknown argument '" + a + "'");
      if (i + 1 >= argc) fail("missing value after " + a);
      if (!values_.emplace(a, argv[i + 1]).second) fail(a + " given twice");
      ++i;
    }
  }

  std::string str(const char* flag, const std::string& def) const {
    const auto it = values_.find(flag);
    return it == values_.end() ? def : it->second;
  }

  /// A whole number in [lo, hi]; `def` when the flag is absent.
  int64_t integer(const char* flag, int64_t def, int64_t lo = 0, int64_t hi = INT64_MAX) const {
    const auto it = values_.find(flag);
    if (it == values_.end()) return def;
    const char* s = it->second.c_str();
    char* end = nullptr;
    errno = 0;
    const long long v = std::strtoll(s, &end, 10);
    if (end == s || *end != '\0' || errno == ERANGE || v < lo || v > hi)
      fail(std::string(flag) + " needs a whole number in [" + std::to_string(lo) + ", " +
           (hi == INT64_MAX ? std::string("inf") : std::to_string(hi)) + "], got '" + s + "'");
    return v;
  }

  /// A finite real number in [lo, hi]; `def` when the flag is absent.
  double number(const char* flag, double def, double lo, double hi) const {
    const auto it = values_.find(flag);
    if (it == values_.end()) return def;
    const char* s = it->second.c_str();
    char* end = nullptr;
    const double v = std::strtod(s, &end);
    if (end == s || *end != '\0' || !std::isfinite(v) || v < lo || v > hi)
      fail(std::string(flag) + " needs a number in [" + shortest(lo) + ", " + shortest(hi) +
           "], got '" + s + "'");
    return v;
  }

  /// Applies --threads N (0 or absent: all cores) to the thread pool.
  void apply_threads() const {
    const int64_t n = integer("--threads", 0, 0, 1024);
    if (n > 0) set_num_threads(static_cast<int>(n));
  }

  /// Stops the program: the message and the usage on stderr, exit status 2.
  [[noreturn]] void fail(const std::string& what) const {
    std::fprintf(stderr, "%s: %s\n", program_, what.c_str());
    std::fputs(usage_, stderr);
    std::exit(2);
  }

 private:
  static std::string shortest(double x) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", x);
    return buf;
  }

  const char* program_;
  const char* usage_;
  std::map<std::string, std::string> values_;
};

}  // namespace attend::bench
