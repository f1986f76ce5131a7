// Time per op: every kernel call that goes through ops::detail::dispatch is timed while
// profiling is on, summed by op name (forward and backward ops have their own names). For
// finding where a training or decoding step spends its time (bench/train_throughput --profile);
// off by default, when it costs one branch per op call.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace attend {

struct OpTime {
  std::string op;
  double seconds = 0;
  int64_t calls = 0;
};

/// Whether op calls are being timed.
bool op_profiling();
/// Starts timing (clearing earlier totals) or stops it.
void set_op_profiling(bool on);
/// Adds one call of `op` that took `seconds`.
void record_op_time(std::string_view op, double seconds);
/// The totals so far, largest first.
std::vector<OpTime> op_times();

}  // namespace attend
