// Continuous batching over one decoding session (see scheduler.h).
#include "serve/scheduler.h"

#include <algorithm>
#include <exception>
#include <utility>

namespace attend::serve {

bool Ticket::wait(std::chrono::steady_clock::time_point deadline,
                  std::vector<std::pair<size_t, std::string>>* pieces) {
  std::unique_lock lock(mutex_);
  cv_.wait_until(lock, deadline, [&] { return done_ || (pieces && !pieces_.empty()); });
  if (pieces) {
    for (auto& p : pieces_) pieces->push_back(std::move(p));
    pieces_.clear();
  }
  return done_;
}

Scheduler::Scheduler(const nn::EncoderDecoder& model, SchedulerOptions options)
    : Scheduler(
          options, [&model] { return std::make_unique<decode::Session>(model); },
          [](const decode::Request& r) { return static_cast<int64_t>(r.source.size()); }) {}

Scheduler::Scheduler(const nn::DecoderOnly& model, const data::Tokenizer& tokenizer,
                     SchedulerOptions options)
    : Scheduler(
          options,
          [&model, &tokenizer] { return std::make_unique<decode::Session>(model, &tokenizer); },
          [ctx = model.config().max_positions](const decode::Request& r) {
            return r.options.beam * std::min<int64_t>(ctx, static_cast<int64_t>(r.source.size()) +
                                                               r.options.max_new);
          }) {}

Scheduler::Scheduler(SchedulerOptions options,
                     std::function<std::unique_ptr<decode::Session>()> make,
                     std::function<int64_t(const decode::Request&)> cost)
    : options_(options),
      make_session_(std::move(make)),
      cost_(std::move(cost)),
      session_(make_session_()),
      thread_([this] { loop(); }) {}

Scheduler::~Scheduler() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  thread_.join();
}

std::shared_ptr<Ticket> Scheduler::submit(std::vector<decode::Request> entries, bool pieces) {
  auto t = std::make_shared<Ticket>();
  t->results_.resize(entries.size());
  t->ids_.assign(entries.size(), -1);
  int64_t needed = 0;
  for (const auto& e : entries) needed += e.source.empty() ? 0 : 1;
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || static_cast<int64_t>(queue_.size()) + needed > options_.max_queue)
      return nullptr;
    for (size_t i = 0; i < entries.size(); ++i) {
      if (entries[i].source.empty()) {  // as translate: an empty source, one empty translation
        t->results_[i].emplace_back();
        continue;
      }
      const int64_t id = next_id_++;
      t->ids_[i] = id;
      decode::Request& r = entries[i];
      r.id = id;
      r.pieces = pieces;
      const int64_t cost = cost_(r);
      queue_.push_back({t, i, std::move(r), cost});
    }
    t->remaining_ = needed;
    t->done_ = needed == 0;
    stats_.queued = static_cast<int64_t>(queue_.size());
  }
  work_cv_.notify_all();
  return t;
}

void Scheduler::cancel(const std::shared_ptr<Ticket>& ticket) {
  if (ticket->cancelled_.exchange(true)) return;
  {
    std::lock_guard lock(mutex_);
    cancelled_.push_back(ticket);
  }
  work_cv_.notify_all();
}

SchedulerStats Scheduler::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

void Scheduler::fail_running(const std::string& message) {
  for (auto& [id, run] : running_) {
    {
      std::lock_guard lock(run.ticket->mutex_);
      if (run.ticket->done_) continue;
      run.ticket->failure_ = message;
      run.ticket->done_ = true;
    }
    run.ticket->cv_.notify_all();
  }
  running_.clear();
  running_cost_ = 0;
}

// Hands out the text drawn, then the finished entries.
void Scheduler::deliver() {
  std::vector<std::shared_ptr<Ticket>> woken;
  for (auto& [id, piece] : session_->take_text()) {
    const auto it = running_.find(id);
    if (it == running_.end()) continue;
    std::lock_guard lock(it->second.ticket->mutex_);
    it->second.ticket->pieces_.emplace_back(it->second.index, std::move(piece));
    woken.push_back(it->second.ticket);
  }
  int64_t tokens = 0;
  for (decode::Result& r : session_->retire()) {
    const auto it = running_.find(r.id);
    if (it == running_.end()) continue;  // its request was cancelled meanwhile
    Running run = std::move(it->second);
    running_.erase(it);
    running_cost_ -= run.cost;
    for (const auto& h : r.hypotheses) tokens += static_cast<int64_t>(h.tokens.size());
    {
      std::lock_guard lock(run.ticket->mutex_);
      if (run.ticket->done_) continue;  // failed already
      run.ticket->results_[run.index] = std::move(r.hypotheses);
      run.ticket->done_ = --run.ticket->remaining_ == 0;
    }
    woken.push_back(run.ticket);
  }
  for (const auto& t : woken) t->cv_.notify_all();
  std::lock_guard lock(mutex_);
  stats_.target_tokens += tokens;
}

void Scheduler::loop() {
  for (;;) {
    std::vector<Pending> batch;
    std::vector<std::shared_ptr<Ticket>> cancelled;
    {
      std::unique_lock lock(mutex_);
      work_cv_.wait(lock, [&] {
        return stopping_ || !queue_.empty() || !cancelled_.empty() || !running_.empty();
      });
      if (stopping_ && queue_.empty() && running_.empty()) return;
      cancelled.swap(cancelled_);
      // Admission: first come, first served, while the batch stays within the budget (an
      // entry over the budget decodes alone).
      int64_t cost = running_cost_;
      while (!queue_.empty()) {
        Pending& p = queue_.front();
        if (p.ticket->cancelled_) {
          queue_.pop_front();
          continue;
        }
        if ((!running_.empty() || !batch.empty()) && cost + p.cost > options_.max_batch_tokens)
          break;
        cost += p.cost;
        batch.push_back(std::move(p));
        queue_.pop_front();
      }
      stats_.queued = static_cast<int64_t>(queue_.size());
    }
    for (const auto& t : cancelled)
      for (const int64_t id : t->ids_) {
        const auto it = running_.find(id);
        if (it == running_.end()) continue;
        running_cost_ -= it->second.cost;
        running_.erase(it);
        session_->cancel(id);
      }
    try {
      if (!batch.empty()) {
        std::vector<decode::Request> requests;
        for (Pending& p : batch) {
          running_[p.request.id] = {p.ticket, p.index, p.cost};
          running_cost_ += p.cost;
          requests.push_back(std::move(p.request));
        }
        session_->admit(requests);
      }
      session_->step();
    } catch (const std::exception& e) {
      // The session may be half-way through a step: every request in it fails with the
      // message, and decoding goes on in a new session.
      fail_running(e.what());
      session_ = make_session_();
    }
    deliver();
    std::lock_guard lock(mutex_);
    stats_.decoding = session_->active_requests();
    stats_.rows = session_->live_rows();
    ++stats_.steps;
  }
}

}  // namespace attend::serve
