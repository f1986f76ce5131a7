// Time per op (see profile.h).
#include "core/profile.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>

namespace attend {
namespace {

std::atomic<bool> profiling{false};
std::mutex mu;
std::map<std::string, OpTime, std::less<>>& totals() {
  static std::map<std::string, OpTime, std::less<>> t;
  return t;
}

}  // namespace

bool op_profiling() { return profiling.load(std::memory_order_relaxed); }

void set_op_profiling(bool on) {
  std::lock_guard<std::mutex> lock(mu);
  if (on) totals().clear();
  profiling.store(on, std::memory_order_relaxed);
}

void record_op_time(std::string_view op, double seconds) {
  std::lock_guard<std::mutex> lock(mu);
  auto it = totals().find(op);
  if (it == totals().end()) it = totals().emplace(std::string(op), OpTime{std::string(op)}).first;
  it->second.seconds += seconds;
  ++it->second.calls;
}

std::vector<OpTime> op_times() {
  std::lock_guard<std::mutex> lock(mu);
  std::vector<OpTime> out;
  for (const auto& [name, t] : totals()) out.push_back(t);
  std::sort(out.begin(), out.end(),
            [](const OpTime& a, const OpTime& b) { return a.seconds > b.seconds; });
  return out;
}

}  // namespace attend
