// Continuous batching over one decoding session (see scheduler.h).
#include "serve/scheduler.h"

#include <algorithm>
#include <exception>
#include <utility>

namespace attend::serve {

bool Ticket::wait_until(std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lock(mutex_);
  return done_cv_.wait_until(lock, deadline, [&] { return done_; });
}

Scheduler::Scheduler(const nn::EncoderDecoder& model, SchedulerOptions options)
    : model_(model),
      options_(options),
      session_(std::make_unique<decode::Session>(model)),
      thread_([this] { loop(); }) {}

Scheduler::~Scheduler() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  thread_.join();
}

std::shared_ptr<Ticket> Scheduler::submit(const std::vector<std::vector<int32_t>>& sources,
                                          const decode::SearchOptions& options) {
  auto t = std::make_shared<Ticket>();
  t->results_.resize(sources.size());
  t->ids_.assign(sources.size(), -1);
  int64_t needed = 0;
  for (const auto& s : sources) needed += s.empty() ? 0 : 1;
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || static_cast<int64_t>(queue_.size()) + needed > options_.max_queue)
      return nullptr;
    for (size_t i = 0; i < sources.size(); ++i) {
      if (sources[i].empty()) {  // as translate: an empty source, one empty translation
        t->results_[i].emplace_back();
        continue;
      }
      const int64_t id = next_id_++;
      t->ids_[i] = id;
      queue_.push_back({t, i, decode::Request{sources[i], options, i, id}});
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

void Scheduler::fail(const std::vector<Pending>& batch, const std::string& message) {
  for (const Pending& p : batch) {
    {
      std::lock_guard lock(p.ticket->mutex_);
      if (p.ticket->done_) continue;
      p.ticket->failure_ = message;
      p.ticket->done_ = true;
    }
    p.ticket->done_cv_.notify_all();
  }
}

void Scheduler::deliver(std::vector<decode::Result> results) {
  int64_t tokens = 0;
  for (decode::Result& r : results) {
    const auto it = running_.find(r.id);
    if (it == running_.end()) continue;  // its request was cancelled meanwhile
    Running run = std::move(it->second);
    running_.erase(it);
    running_tokens_ -= run.source_tokens;
    for (const auto& h : r.hypotheses) tokens += static_cast<int64_t>(h.tokens.size());
    bool done = false;
    {
      std::lock_guard lock(run.ticket->mutex_);
      if (run.ticket->done_) continue;  // failed already
      run.ticket->results_[run.index] = std::move(r.hypotheses);
      done = --run.ticket->remaining_ == 0;
      run.ticket->done_ = done;
    }
    if (done) run.ticket->done_cv_.notify_all();
  }
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
      // Admission: first come, first served, while the batch's source subwords stay within the
      // budget (a sentence longer than the budget decodes alone).
      int64_t tokens = running_tokens_;
      while (!queue_.empty()) {
        Pending& p = queue_.front();
        if (p.ticket->cancelled_) {
          queue_.pop_front();
          continue;
        }
        const auto n = static_cast<int64_t>(p.request.source.size());
        if ((!running_.empty() || !batch.empty()) && tokens + n > options_.max_batch_tokens) break;
        tokens += n;
        batch.push_back(std::move(p));
        queue_.pop_front();
      }
      stats_.queued = static_cast<int64_t>(queue_.size());
    }
    for (const auto& t : cancelled)
      for (const int64_t id : t->ids_) {
        const auto it = running_.find(id);
        if (it == running_.end()) continue;
        running_tokens_ -= it->second.source_tokens;
        running_.erase(it);
        session_->cancel(id);
      }
    try {
      if (!batch.empty()) {
        std::vector<decode::Request> requests;
        for (const Pending& p : batch) {
          requests.push_back(p.request);
          const auto n = static_cast<int64_t>(p.request.source.size());
          running_[p.request.id] = {p.ticket, p.index, n};
          running_tokens_ += n;
        }
        session_->admit(requests);
      }
      session_->step();
    } catch (const std::exception& e) {
      // The session may be half-way through a step: every request in it fails with the
      // message, and decoding goes on in a new session.
      std::vector<Pending> all;
      for (auto& [id, run] : running_) all.push_back({run.ticket, run.index, {}});
      fail(all, e.what());
      running_.clear();
      running_tokens_ = 0;
      session_ = std::make_unique<decode::Session>(model_);
    }
    deliver(session_->retire());
    std::lock_guard lock(mutex_);
    stats_.decoding = session_->active_requests();
    stats_.rows = session_->live_rows();
    ++stats_.steps;
  }
}

// ---------------------------------------------------------------- language models

bool Job::wait_pieces(std::chrono::steady_clock::time_point deadline,
                      std::vector<std::pair<size_t, std::string>>& pieces) {
  std::unique_lock lock(mutex_);
  cv_.wait_until(lock, deadline, [&] { return ended_ || !pieces_.empty(); });
  for (auto& p : pieces_) pieces.push_back(std::move(p));
  pieces_.clear();
  return ended_;
}

LmWorker::LmWorker(const nn::DecoderOnly& model, const data::Tokenizer& tokenizer,
                   SchedulerOptions options)
    : model_(model),
      tokenizer_(tokenizer),
      generator_(model, tokenizer),
      options_(options),
      session_(std::make_unique<decode::Session>(model, &tokenizer)),
      thread_([this] { loop(); }) {}

LmWorker::~LmWorker() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  thread_.join();
}

std::shared_ptr<Job> LmWorker::submit(std::vector<std::vector<int32_t>> prompts,
                                      const decode::GenerateOptions& options, bool pieces) {
  auto job = std::make_shared<Job>();
  // Beam search: one session request per prompt, its n best the choices; drawing: n requests per
  // prompt (draw j of prompt i from stream i * n + j).
  job->results_.resize(prompts.size() * static_cast<size_t>(options.n));
  job->remaining_ = static_cast<int64_t>(prompts.size()) * (options.beam > 1 ? 1 : options.n);
  job->prompts_ = std::move(prompts);
  job->options_ = options;
  job->want_pieces_ = pieces;
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || static_cast<int64_t>(queue_.size()) >= options_.max_queue) return nullptr;
    queue_.push_back(job);
    stats_.queued = static_cast<int64_t>(queue_.size());
  }
  work_cv_.notify_all();
  return job;
}

void LmWorker::cancel(const std::shared_ptr<Job>& job) {
  job->cancelled_ = true;
  work_cv_.notify_all();
}

LmStats LmWorker::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

int64_t LmWorker::positions(const Job& job) const {
  const int64_t ctx = model_.config().max_positions;
  const int64_t rows = job.options_.beam > 1 ? job.options_.beam : job.options_.n;  // per prompt
  int64_t n = 0;
  for (const auto& p : job.prompts_)
    n += rows * std::min<int64_t>(ctx, static_cast<int64_t>(p.size()) + job.options_.max_new);
  return n;
}

void LmWorker::end(const std::shared_ptr<Job>& job, const std::string& failure) {
  {
    std::lock_guard lock(job->mutex_);
    if (job->ended_) return;
    job->failure_ = failure;
    job->ended_ = true;
  }
  job->cv_.notify_all();
}

void LmWorker::loop() {
  for (;;) {
    std::vector<std::shared_ptr<Job>> joining;
    {
      std::unique_lock lock(mutex_);
      work_cv_.wait(lock, [&] { return stopping_ || !queue_.empty() || !running_.empty(); });
      if (queue_.empty() && running_.empty()) return;  // stopping, nothing left
      // Admission: whole requests, first come first served, within the positions budget.
      int64_t budget = 0;
      for (const auto& job : running_jobs_) budget += positions(*job);
      while (!queue_.empty()) {
        std::shared_ptr<Job>& job = queue_.front();
        if (job->cancelled_) {
          end(job, "cancelled");
          queue_.pop_front();
          continue;
        }
        const int64_t need = positions(*job);
        if ((!running_.empty() || !joining.empty()) && budget + need > options_.max_batch_tokens)
          break;
        budget += need;
        joining.push_back(std::move(job));
        queue_.pop_front();
      }
      stats_.queued = static_cast<int64_t>(queue_.size());
    }
    // Requests whose client left (or whose time ran out) leave the batch.
    for (auto it = running_.begin(); it != running_.end();) {
      if (it->second.job->cancelled_) {
        session_->cancel(it->first);
        end(it->second.job, "cancelled");
        it = running_.erase(it);
      } else {
        ++it;
      }
    }
    std::erase_if(running_jobs_,
                  [](const std::shared_ptr<Job>& j) { return j->cancelled_.load(); });
    try {
      std::vector<decode::Request> requests;
      for (const auto& job : joining) {
        const decode::SearchOptions search = job->options_.search();
        const auto n = static_cast<size_t>(job->options_.n);
        const size_t draws = job->options_.beam > 1 ? 1 : n;
        for (size_t i = 0; i < job->prompts_.size(); ++i)
          for (size_t j = 0; j < draws; ++j) {
            const int64_t id = next_id_++;
            requests.push_back({job->prompts_[i], search, i * n + j, id, {}, job->want_pieces_});
            running_[id] = {job, i, i * n + j};
          }
        running_jobs_.push_back(job);
      }
      if (!requests.empty()) session_->admit(requests);
      session_->step();
    } catch (const std::exception& e) {
      // The session may be half-way through a step: its requests fail with the message, and
      // generation goes on in a new session.
      for (auto& [id, run] : running_) end(run.job, e.what());
      running_.clear();
      running_jobs_.clear();
      session_ = std::make_unique<decode::Session>(model_, &tokenizer_);
    }
    // Hand out the text drawn, then the finished prompts.
    std::vector<std::shared_ptr<Job>> woken;
    for (auto& [id, piece] : session_->take_text()) {
      const auto it = running_.find(id);
      if (it == running_.end()) continue;
      std::lock_guard lock(it->second.job->mutex_);
      it->second.job->pieces_.emplace_back(it->second.choice, std::move(piece));
      woken.push_back(it->second.job);
    }
    int64_t tokens = 0;
    for (const decode::Result& r : session_->retire()) {
      const auto it = running_.find(r.id);
      if (it == running_.end()) continue;
      const Running run = it->second;
      running_.erase(it);
      const auto prompt_tokens = static_cast<int64_t>(run.job->prompts_[run.prompt].size());
      // Beam search: its n best; a draw: one.
      const size_t choices =
          run.job->options_.beam > 1 ? static_cast<size_t>(run.job->options_.n) : 1;
      bool done = false;
      {
        std::lock_guard lock(run.job->mutex_);
        for (size_t k = 0; k < choices; ++k) {
          decode::Generation g = decode::to_generation(r, prompt_tokens, &tokenizer_, k);
          tokens += static_cast<int64_t>(g.tokens.size());
          run.job->results_[run.choice + k] = std::move(g);
        }
        done = --run.job->remaining_ == 0;
        if (done) run.job->ended_ = true;
      }
      if (done) std::erase(running_jobs_, run.job);
      woken.push_back(run.job);
    }
    for (const auto& job : woken) job->cv_.notify_all();
    std::lock_guard lock(mutex_);
    stats_.generating = static_cast<int64_t>(running_.size());
    stats_.target_tokens += tokens;
    ++stats_.steps;
  }
}

}  // namespace attend::serve
