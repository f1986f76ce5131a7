// The server's metrics, apart from any socket or endpoint: requests by endpoint and status, the
// latency histogram of translate and completions replies, cancellations, token counts and the
// recent token rate; `exposition` writes them, with the connections and each model's scheduler
// state, as Prometheus text (format 0.0.4). Hand-written: Debian 12 ships no Prometheus client
// library for C++ (libprometheus-cpp-dev arrives in later releases; docs/ARCHITECTURE.md).
#pragma once
#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "serve/scheduler.h"

namespace attend::serve {

/// One served model's state for the exposition.
struct ModelStats {
  std::string name;
  bool language_model = false;
  SchedulerStats scheduler;
};

class Metrics {
 public:
  using Clock = std::chrono::steady_clock;
  /// One answered request (latency: for timed endpoints' successful replies).
  void count(const std::string& endpoint, int status, std::optional<double> latency_s);
  /// A request whose client left before its reply.
  void cancelled();
  /// Tokens of one answered request.
  void tokens(int64_t source, int64_t target);
  /// Prometheus text of everything, with `connections` open and the models' states.
  std::string exposition(int64_t connections, const std::vector<ModelStats>& models);

 private:
  // Upper bounds of the latency histogram's buckets, in seconds.
  static constexpr std::array<double, 13> kLatencyBounds = {
      0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
  std::mutex mutex_;
  std::map<std::pair<std::string, int>, int64_t> requests_;  // (endpoint, status) -> count
  std::array<int64_t, kLatencyBounds.size() + 1> latency_buckets_{};
  double latency_sum_ = 0;
  int64_t latency_count_ = 0;
  int64_t cancelled_ = 0;
  std::deque<std::pair<Clock::time_point, int64_t>> token_marks_;  // (time, target tokens so far)
  int64_t target_tokens_ = 0;
  int64_t source_tokens_ = 0;
};

/// A Prometheus label value with \, " and line breaks escaped.
std::string prometheus_label(const std::string& s);

}  // namespace attend::serve
