// --profile 1 of the throughput benchmarks: runs a unit of work (a training step, a decoded
// batch) again with every op call timed (core/profile.h) and prints each op's share of it on
// stderr, with the time outside ops. Apart from the timed runs, which the timers would slow.
#pragma once
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>

#include "core/profile.h"

namespace attend::bench {

/// Runs `work` `runs` times with op profiling on and prints the table, per `unit` ("step").
inline void print_op_profile(int64_t runs, const char* unit, const std::function<void()>& work) {
  using Clock = std::chrono::steady_clock;
  double total = 0;
  set_op_profiling(true);
  for (int64_t r = 0; r < runs; ++r) {
    const auto t0 = Clock::now();
    work();
    total += std::chrono::duration<double>(Clock::now() - t0).count();
  }
  set_op_profiling(false);
  double in_ops = 0;
  std::fprintf(stderr, "%-28s %10s %7s %8s   (per %s)\n", "op", "ms", "%", "calls", unit);
  for (const OpTime& t : op_times()) {
    in_ops += t.seconds;
    std::fprintf(stderr, "%-28s %10.2f %6.1f%% %8.1f\n", t.op.c_str(), 1e3 * t.seconds / runs,
                 100 * t.seconds / total, static_cast<double>(t.calls) / runs);
  }
  std::fprintf(stderr, "%-28s %10.2f %6.1f%%\n%-28s %10.2f\n", "outside ops",
               1e3 * (total - in_ops) / runs, 100 * (total - in_ops) / total, unit,
               1e3 * total / runs);
}

}  // namespace attend::bench
