// Continuous batching for one translation model: a scheduler thread owns a decoding session
// (decode::Session). Requests queue their sentences; between two decoder steps the thread admits
// queued sentences while the sentences decoding hold fewer than `max_batch_tokens` source
// subwords, runs one step for all of them, and hands each finished sentence to its request. A
// request that is cancelled (its client left, its time ran out) leaves the batch at the next
// step. A sentence's result is what `attend translate` gives for it: the session's results do
// not depend on what else is in the batch, and sentence i of a request samples from stream i as
// line i of a translate input does.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "decode/generator.h"
#include "decode/session.h"

namespace attend::serve {

struct SchedulerOptions {
  int64_t max_batch_tokens = 2000;  // source subwords of the sentences decoding at once
  int64_t max_queue = 1024;         // sentences waiting to join; more: submit refuses
};

/// One request's sentences, results and state, shared by its HTTP thread and the scheduler.
class Ticket {
 public:
  /// Waits until every sentence has its result, the request failed, or `deadline` passes;
  /// returns whether it is done (results or failure).
  bool wait_until(std::chrono::steady_clock::time_point deadline);
  /// Non-empty when decoding failed (the message).
  const std::string& failure() const { return failure_; }
  /// The n-best hypotheses of each sentence, in request order (once done).
  const std::vector<std::vector<decode::Hypothesis>>& results() const { return results_; }

 private:
  friend class Scheduler;
  std::mutex mutex_;
  std::condition_variable done_cv_;
  std::vector<std::vector<decode::Hypothesis>> results_;
  std::vector<int64_t> ids_;  // session ids of its sentences (-1: no session needed)
  int64_t remaining_ = 0;
  bool done_ = false;
  std::string failure_;
  std::atomic<bool> cancelled_{false};
};

/// What the scheduler is doing (for /metrics).
struct SchedulerStats {
  int64_t queued = 0;         // sentences waiting to join
  int64_t decoding = 0;       // sentences in the running batch
  int64_t rows = 0;           // decoder rows in the last step
  int64_t steps = 0;          // decoder steps run
  int64_t target_tokens = 0;  // tokens of finished hypotheses returned
};

class Scheduler {
 public:
  /// The model (eval mode) must outlive the scheduler. Starts the scheduler thread.
  Scheduler(const nn::EncoderDecoder& model, SchedulerOptions options);
  ~Scheduler();  // finishes every queued and running sentence, then stops the thread
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  /// Queues the sentences of one request (encoder ids; an empty source gets one empty
  /// hypothesis at once). Returns null when the queue cannot take them all (the caller answers
  /// 503), else the request's ticket.
  std::shared_ptr<Ticket> submit(const std::vector<std::vector<int32_t>>& sources,
                                 const decode::SearchOptions& options);
  /// Stops decoding a request: its queued sentences are dropped and its running ones leave the
  /// batch at the next step. Its ticket never completes after this.
  void cancel(const std::shared_ptr<Ticket>& ticket);

  SchedulerStats stats() const;

 private:
  struct Pending {
    std::shared_ptr<Ticket> ticket;
    size_t index;  // sentence index in the request
    decode::Request request;
  };
  void loop();
  void deliver(std::vector<decode::Result> results);
  void fail(const std::vector<Pending>& batch, const std::string& message);

  const nn::EncoderDecoder& model_;
  const SchedulerOptions options_;
  std::unique_ptr<decode::Session> session_;  // replaced after a failed step

  mutable std::mutex mutex_;
  std::condition_variable work_cv_;
  std::deque<Pending> queue_;
  std::vector<std::shared_ptr<Ticket>> cancelled_;
  bool stopping_ = false;
  int64_t next_id_ = 0;
  SchedulerStats stats_;

  // Owned by the scheduler thread only.
  struct Running {
    std::shared_ptr<Ticket> ticket;
    size_t index;
    int64_t source_tokens;
  };
  std::unordered_map<int64_t, Running> running_;
  int64_t running_tokens_ = 0;

  std::thread thread_;
};

// ---------------------------------------------------------------- language models
// Continuous batching for one decoder-only model: a scheduler thread owns a decoding session
// (decode::Session over the decoder-only model). Completion requests queue; between two steps the thread admits whole
// queued requests while the running prompts reserve at most `max_batch_tokens` positions
// (prompt + max_tokens each, at most the context; a larger request runs alone), every step
// draws one token for each running prompt, each new piece of text goes to its request as it
// is drawn (streaming), and finished prompts leave. Prompt i of a request draws from stream i,
// so a completion equals `attend generate` on the same prompts and options.

/// One completion request's prompts, streamed pieces and results.
class Job {
 public:
  /// Waits until new pieces arrive, the job ends, or `deadline` passes; moves the pieces that
  /// arrived (prompt index, text) into `pieces`. Returns whether the job has ended.
  bool wait_pieces(std::chrono::steady_clock::time_point deadline,
                   std::vector<std::pair<size_t, std::string>>& pieces);
  const std::string& failure() const { return failure_; }  // once ended
  /// Once ended: options.n generations per prompt, prompt i's at i * n .. i * n + n - 1 (the
  /// choice index of pieces too).
  const std::vector<decode::Generation>& results() const { return results_; }

 private:
  friend class LmWorker;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<std::vector<int32_t>> prompts_;
  decode::GenerateOptions options_;
  bool want_pieces_ = false;
  std::vector<std::pair<size_t, std::string>> pieces_;
  std::vector<decode::Generation> results_;
  int64_t remaining_ = 0;  // session requests not finished
  std::string failure_;
  bool ended_ = false;
  std::atomic<bool> cancelled_{false};
};

struct LmStats {
  int64_t queued = 0;         // requests waiting to join
  int64_t generating = 0;     // prompts in the running batch
  int64_t steps = 0;          // steps run
  int64_t target_tokens = 0;  // tokens generated
};

class LmWorker {
 public:
  /// The model (eval mode) and tokenizer must outlive the worker. Starts the scheduler thread.
  LmWorker(const nn::DecoderOnly& model, const data::Tokenizer& tokenizer,
           SchedulerOptions options);
  ~LmWorker();  // finishes every queued and running request, then stops the thread
  LmWorker(const LmWorker&) = delete;
  LmWorker& operator=(const LmWorker&) = delete;

  const decode::Generator& generator() const { return generator_; }
  /// Queues one request (prompt ids from generator().prompt_ids, each shorter than the
  /// context); `pieces`: its text is handed out as it is drawn (wait_pieces), else only the
  /// results. Null when the queue is full.
  std::shared_ptr<Job> submit(std::vector<std::vector<int32_t>> prompts,
                              const decode::GenerateOptions& options, bool pieces);
  /// Stops a request: dropped from the queue, or its prompts leave the batch at the next step.
  void cancel(const std::shared_ptr<Job>& job);
  LmStats stats() const;

 private:
  void loop();
  void end(const std::shared_ptr<Job>& job, const std::string& failure);
  int64_t positions(const Job& job) const;  // cache positions a job reserves

  const nn::DecoderOnly& model_;
  const data::Tokenizer& tokenizer_;
  decode::Generator generator_;
  const SchedulerOptions options_;
  std::unique_ptr<decode::Session> session_;  // replaced after a failed step

  mutable std::mutex mutex_;
  std::condition_variable work_cv_;
  std::deque<std::shared_ptr<Job>> queue_;
  bool stopping_ = false;
  LmStats stats_;

  // Owned by the scheduler thread only.
  struct Running {
    std::shared_ptr<Job> job;
    size_t prompt;  // index into the job's prompts
    size_t choice;  // its first choice index (beam search: n choices from there)
  };
  std::unordered_map<int64_t, Running> running_;    // session id -> request, prompt, choice
  std::vector<std::shared_ptr<Job>> running_jobs_;  // the requests those prompts belong to
  int64_t next_id_ = 0;

  std::thread thread_;
};

}  // namespace attend::serve
