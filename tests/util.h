// Test helpers: deterministic random tensors and tolerance comparisons.
#pragma once
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <set>
#include <string>

#include "core/rng.h"
#include "core/tensor.h"
#include "kernels/cpu/vec_math.h"

namespace attend::test {

/// The per-process temporary directories of tmp_path, removed when the test process exits.
class TmpDirs {
 public:
  void add(const std::filesystem::path& dir) { dirs_.insert(dir.string()); }
  ~TmpDirs() {
    std::error_code ec;  // best effort: a directory already gone is fine
    for (const std::string& d : dirs_) std::filesystem::remove_all(d, ec);
  }

 private:
  std::set<std::string> dirs_;
};
inline TmpDirs& tmp_dirs() {
  static TmpDirs dirs;
  return dirs;
}

/// A path under a per-process temporary directory for `suite` (created on first use, removed
/// with everything in it when the process exits).
inline std::string tmp_path(const std::string& suite, const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("attend_test_" + suite + "_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  tmp_dirs().add(dir);
  return (dir / name).string();
}

/// The message of the attend::Error that f throws ("" when it throws none).
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

/// f64 tensor with N(0, scale^2) entries from Philox(seed).
inline Tensor randn(const Shape& shape, uint64_t seed, double scale = 1.0) {
  Tensor t = Tensor::empty(shape, DType::kF64);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<double>()[i] = scale * philox_normal(seed, 99, i);
  return t;
}

/// f64 tensor with U(lo, hi) entries.
inline Tensor rand_uniform(const Shape& shape, uint64_t seed, double lo, double hi) {
  Tensor t = Tensor::empty(shape, DType::kF64);
  for (int64_t i = 0; i < t.numel(); ++i)
    t.data<double>()[i] = lo + (hi - lo) * philox_uniform(seed, 98, i);
  return t;
}

inline Tensor ids(std::vector<int32_t> v, const Shape& shape) {
  return Tensor::from_vector(v, shape);
}

/// Max over elements of |a - b| / (atol + rtol |b|); <= 1 means within tolerance.
inline ::testing::AssertionResult close(const Tensor& a, const Tensor& b, double rtol,
                                        double atol) {
  if (a.shape() != b.shape())
    return ::testing::AssertionFailure()
           << "shape " << shape_str(a.shape()) << " vs " << shape_str(b.shape());
  const Tensor x = a.to(DType::kF64).contiguous(), y = b.to(DType::kF64).contiguous();
  double worst = 0.0;
  int64_t at = -1;
  for (int64_t i = 0; i < x.numel(); ++i) {
    const double xa = x.data<double>()[i], yb = y.data<double>()[i];
    const double r = std::abs(xa - yb) / (atol + rtol * std::abs(yb));
    if (!(r <= worst) || std::isnan(r)) {
      worst = std::isnan(r) ? INFINITY : r;
      at = i;
    }
  }
  if (worst <= 1.0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "element " << at << ": " << x.data<double>()[at] << " vs " << y.data<double>()[at]
         << " (rtol " << rtol << ", atol " << atol << ")";
}

/// Runs f and checks that it throws attend::Error whose message contains every needle.
template <typename F>
::testing::AssertionResult throws_with(F&& f, std::initializer_list<std::string> needles) {
  try {
    f();
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const std::string& n : needles)
      if (msg.find(n) == std::string::npos)
        return ::testing::AssertionFailure() << "message '" << msg << "' lacks '" << n << "'";
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << "no attend::Error thrown";
}

/// Runs f once per family of hand-written CPU kernels this host runs (portable loops, AVX2,
/// AVX-512; lowest first) with that family chosen, naming it in any failure.
template <typename F>
void on_every_isa(F&& f) {
  for (const cpu::Isa isa : {cpu::Isa::kPortable, cpu::Isa::kAvx2, cpu::Isa::kAvx512}) {
    if (isa > cpu::cpu_isa()) break;
    const cpu::IsaScope scope(isa);
    SCOPED_TRACE(std::string("kernels: ") + cpu::isa_name(isa));
    f();
  }
}

}  // namespace attend::test
