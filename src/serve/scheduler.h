// Continuous batching for one model, translation or language model alike: a scheduler thread
// owns a decoding session (decode::Session). A request queues its entries (a sentence to
// translate, a prompt to continue); between two decoder steps the thread admits queued entries,
// first come first served, while the entries decoding stay within a budget (`max_batch_tokens`:
// source subwords of a translation model's sentences; cache positions -- prompt + max_new, at
// most the context, per beam row or draw -- of a language model's prompts; an entry over the
// budget runs alone), runs one step for all of them, hands each finished entry to its request,
// and passes on the text pieces drawn for requests that stream. A request that is cancelled
// (its client left, its time ran out) leaves the batch at the next step. An entry's result is
// what `attend translate` / `attend generate` gives for it: the session's results do not depend
// on what else is in the batch, and entry i of a request samples from stream i.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "decode/session.h"

namespace attend::serve {

struct SchedulerOptions {
  int64_t max_batch_tokens = 2000;  // the budget of the entries decoding at once (see above)
  int64_t max_queue = 1024;         // entries waiting to join; more: submit refuses
};

/// One request's entries, results, streamed pieces and state, shared by its HTTP thread and the
/// scheduler.
class Ticket {
 public:
  /// Waits until the request is done (every entry has its result, or it failed), new pieces
  /// arrived (when `pieces` is given), or `deadline` passes; moves the pieces that arrived
  /// (entry index, text) into `pieces`. Returns whether the request is done.
  bool wait(std::chrono::steady_clock::time_point deadline,
            std::vector<std::pair<size_t, std::string>>* pieces = nullptr);
  /// Non-empty when decoding failed (the message).
  const std::string& failure() const { return failure_; }
  /// The n-best hypotheses of each entry, in request order (once done).
  const std::vector<std::vector<decode::Hypothesis>>& results() const { return results_; }

 private:
  friend class Scheduler;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<std::vector<decode::Hypothesis>> results_;
  std::vector<std::pair<size_t, std::string>> pieces_;
  std::vector<int64_t> ids_;  // session ids of its entries (-1: no session needed)
  int64_t remaining_ = 0;
  bool done_ = false;
  std::string failure_;
  std::atomic<bool> cancelled_{false};
};

/// What the scheduler is doing (for /metrics).
struct SchedulerStats {
  int64_t queued = 0;         // entries waiting to join
  int64_t decoding = 0;       // entries in the running batch
  int64_t rows = 0;           // decoder rows in the last step
  int64_t steps = 0;          // decoder steps run
  int64_t target_tokens = 0;  // tokens of the hypotheses returned
};

class Scheduler {
 public:
  /// The model (eval mode) and tokenizer must outlive the scheduler. Starts the thread.
  Scheduler(const nn::EncoderDecoder& model, SchedulerOptions options);
  Scheduler(const nn::DecoderOnly& model, const data::Tokenizer& tokenizer,
            SchedulerOptions options);
  ~Scheduler();  // finishes every queued and running entry, then stops the thread
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  /// Queues the entries of one request (decode::Request without id: the scheduler numbers
  /// them; an empty translation source gets one empty hypothesis at once). `pieces`: its text is
  /// handed out as it is drawn (Ticket::wait). Returns null when the queue cannot take them all
  /// (the caller answers 503), else the request's ticket.
  std::shared_ptr<Ticket> submit(std::vector<decode::Request> entries, bool pieces = false);
  /// Stops decoding a request: its queued entries are dropped and its running ones leave the
  /// batch at the next step. Its ticket never completes after this.
  void cancel(const std::shared_ptr<Ticket>& ticket);

  SchedulerStats stats() const;

 private:
  struct Pending {
    std::shared_ptr<Ticket> ticket;
    size_t index;  // entry index in the request
    decode::Request request;
    int64_t cost;  // its share of max_batch_tokens
  };
  struct Running {
    std::shared_ptr<Ticket> ticket;
    size_t index;
    int64_t cost;
  };
  Scheduler(SchedulerOptions options, std::function<std::unique_ptr<decode::Session>()> make,
            std::function<int64_t(const decode::Request&)> cost);
  void loop();
  void deliver();
  void fail_running(const std::string& message);

  const SchedulerOptions options_;
  const std::function<std::unique_ptr<decode::Session>()> make_session_;
  const std::function<int64_t(const decode::Request&)> cost_;
  std::unique_ptr<decode::Session> session_;  // replaced after a failed step

  mutable std::mutex mutex_;
  std::condition_variable work_cv_;
  std::deque<Pending> queue_;
  std::vector<std::shared_ptr<Ticket>> cancelled_;
  bool stopping_ = false;
  int64_t next_id_ = 0;
  SchedulerStats stats_;

  // Owned by the scheduler thread only.
  std::unordered_map<int64_t, Running> running_;  // session id -> request and entry
  int64_t running_cost_ = 0;

  std::thread thread_;
};

}  // namespace attend::serve
