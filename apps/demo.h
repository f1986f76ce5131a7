// `attend demo`: trains a tiny Transformer encoder on a generated task, for the quick start.
#pragma once
#include <cstdint>

namespace attend::apps {

struct DemoOptions {
  int64_t steps = 600;
  int64_t batch = 64;
  int64_t layers = 1;
  int64_t dim = 64;
  int64_t heads = 4;
  int64_t ffn = 128;
  double lr = 3e-3;
  uint64_t seed = 1;
  int64_t log_every = 50;
};

/// Returns the held-out exact-match accuracy (fraction of sequences reversed perfectly).
double run_demo(const DemoOptions& options);

}  // namespace attend::apps
