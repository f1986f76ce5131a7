// gradcheck: compares the tape's gradients of a function with central finite differences.
// The function's output y is projected onto a fixed random tensor w (L = sum(y * w)) so that
// every output element matters; inputs must be f64 for the differences to be meaningful.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "autograd/tape.h"

namespace attend::ag {

struct GradcheckOptions {
  double eps = 1e-6;   // finite-difference step
  double atol = 1e-6;  // |analytic - numeric| <= atol + rtol * |numeric|
  double rtol = 1e-4;
  uint64_t seed = 1234;
};

struct GradcheckResult {
  bool ok = true;
  double max_abs_error = 0.0;
  std::string report;  // first failing element per input, when !ok
};

using DiffFn = std::function<Variable(const std::vector<Variable>&)>;

/// Checks d sum(f(inputs) * w) / d inputs for every element of every input.
GradcheckResult gradcheck(const DiffFn& f, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& options = {});

}  // namespace attend::ag
