// The server's metrics and their Prometheus exposition (see metrics.h).
#include "serve/metrics.h"

#include <algorithm>
#include <cstdio>

namespace attend::serve {

std::string prometheus_label(const std::string& s) {
  std::string out;
  for (const char c : s) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

void Metrics::count(const std::string& endpoint, int status, std::optional<double> latency_s) {
  std::lock_guard lock(mutex_);
  ++requests_[{endpoint, status}];
  if (latency_s) {
    const auto b = static_cast<size_t>(
        std::lower_bound(kLatencyBounds.begin(), kLatencyBounds.end(), *latency_s) -
        kLatencyBounds.begin());
    ++latency_buckets_[b];
    latency_sum_ += *latency_s;
    ++latency_count_;
  }
}

void Metrics::cancelled() {
  std::lock_guard lock(mutex_);
  ++cancelled_;
}

void Metrics::tokens(int64_t source, int64_t target) {
  std::lock_guard lock(mutex_);
  source_tokens_ += source;
  target_tokens_ += target;
  token_marks_.emplace_back(Clock::now(), target_tokens_);
  while (token_marks_.size() > 4096) token_marks_.pop_front();
}

std::string Metrics::exposition(int64_t connections, const std::vector<ModelStats>& models) {
  std::string out;
  auto line = [&](const std::string& s) { out += s + "\n"; };
  auto num = [](double x) {
    char b[64];
    std::snprintf(b, sizeof b, "%.17g", x);
    return std::string(b);
  };
  {
    std::lock_guard lock(mutex_);
    line("# HELP attend_requests_total HTTP requests answered, by endpoint and status.");
    line("# TYPE attend_requests_total counter");
    for (const auto& [key, n] : requests_)
      line("attend_requests_total{endpoint=\"" + prometheus_label(key.first) + "\",status=\"" +
           std::to_string(key.second) + "\"} " + std::to_string(n));
    line(
        "# HELP attend_translate_seconds Time from a translate or completions request's last "
        "byte to its (last) reply byte.");
    line("# TYPE attend_translate_seconds histogram");
    int64_t cumulative = 0;
    for (size_t b = 0; b < kLatencyBounds.size(); ++b) {
      cumulative += latency_buckets_[b];
      line("attend_translate_seconds_bucket{le=\"" + num(kLatencyBounds[b]) + "\"} " +
           std::to_string(cumulative));
    }
    cumulative += latency_buckets_.back();
    line("attend_translate_seconds_bucket{le=\"+Inf\"} " + std::to_string(cumulative));
    line("attend_translate_seconds_sum " + num(latency_sum_));
    line("attend_translate_seconds_count " + std::to_string(latency_count_));
    line("# HELP attend_cancelled_requests_total Requests whose client left before the reply.");
    line("# TYPE attend_cancelled_requests_total counter");
    line("attend_cancelled_requests_total " + std::to_string(cancelled_));
    line("# HELP attend_source_tokens_total Source subwords of answered translate requests.");
    line("# TYPE attend_source_tokens_total counter");
    line("attend_source_tokens_total " + std::to_string(source_tokens_));
    line("# HELP attend_target_tokens_total Target subwords returned.");
    line("# TYPE attend_target_tokens_total counter");
    line("attend_target_tokens_total " + std::to_string(target_tokens_));
    // Over the replies of the last 10 seconds.
    double rate = 0;
    const auto now = Clock::now();
    while (!token_marks_.empty() && now - token_marks_.front().first > std::chrono::seconds(10))
      token_marks_.pop_front();
    if (!token_marks_.empty()) {
      const double span = std::chrono::duration<double>(now - token_marks_.front().first).count();
      if (span > 0.5)
        rate = static_cast<double>(target_tokens_ - token_marks_.front().second) / span;
    }
    line(
        "# HELP attend_target_tokens_per_second Target subwords returned per second over the "
        "last 10 s.");
    line("# TYPE attend_target_tokens_per_second gauge");
    line("attend_target_tokens_per_second " + num(rate));
  }
  line("# HELP attend_connections Open client connections.");
  line("# TYPE attend_connections gauge");
  line("attend_connections " + std::to_string(connections));
  const char* gauges[][2] = {
      {"attend_queue_sentences", "Sentences waiting to join the running batch."},
      {"attend_batch_sentences", "Sentences in the running batch."},
      {"attend_batch_rows", "Decoder rows (live hypotheses) of the last step."},
      {"attend_decoder_steps_total", "Decoder steps run."}};
  for (int g = 0; g < 4; ++g) {
    line(std::string("# HELP ") + gauges[g][0] + " " + gauges[g][1]);
    line(std::string("# TYPE ") + gauges[g][0] + (g == 3 ? " counter" : " gauge"));
    for (const ModelStats& m : models) {
      if (m.language_model) continue;
      const SchedulerStats& s = m.scheduler;
      const int64_t v = g == 0 ? s.queued : g == 1 ? s.decoding : g == 2 ? s.rows : s.steps;
      line(std::string(gauges[g][0]) + "{model=\"" + prometheus_label(m.name) + "\"} " +
           std::to_string(v));
    }
  }
  const char* lm_gauges[][3] = {
      {"attend_lm_queue_prompts", "gauge", "Prompts (and draws) waiting to join."},
      {"attend_lm_batch_prompts", "gauge", "Prompts in the running generation batch."},
      {"attend_lm_tokens_total", "counter", "Tokens generated."},
      {"attend_lm_steps_total", "counter", "Generation steps run."}};
  for (int g = 0; g < 4; ++g) {
    line(std::string("# HELP ") + lm_gauges[g][0] + " " + lm_gauges[g][2]);
    line(std::string("# TYPE ") + lm_gauges[g][0] + " " + lm_gauges[g][1]);
    for (const ModelStats& m : models) {
      if (!m.language_model) continue;
      const SchedulerStats& s = m.scheduler;
      const int64_t v = g == 0   ? s.queued
                        : g == 1 ? s.decoding
                        : g == 2 ? s.target_tokens
                                 : s.steps;
      line(std::string(lm_gauges[g][0]) + "{model=\"" + prometheus_label(m.name) + "\"} " +
           std::to_string(v));
    }
  }
  return out;
}

}  // namespace attend::serve
