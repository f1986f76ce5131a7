// Bucketed, overlapped gradient all-reduce (see reducer.h).
#include "dist/reducer.h"

#include <chrono>

#include "core/error.h"

namespace attend::dist {
namespace {
double seconds(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

GradientReducer::GradientReducer(Communicator& comm, Tensor flat,
                                 std::vector<std::pair<int64_t, int64_t>> params,
                                 int64_t bucket_bytes)
    : comm_(comm), tensor_(std::move(flat)), flat_(nullptr), bucket_of_(params.size()) {
  ATTEND_CHECK(
      tensor_.dtype() == DType::kF32 && tensor_.device().is_cpu() && tensor_.is_contiguous(),
      "GradientReducer: the gradient buffer must be contiguous f32 on the CPU, got {}",
      tensor_.str());
  flat_ = tensor_.data<float>();
  ATTEND_CHECK(bucket_bytes > 0, "train.bucket_mb: the bucket size must be > 0");
  const int64_t per_bucket = std::max<int64_t>(1, bucket_bytes / 4);
  // From the last parameter backwards: backward finishes those first.
  for (size_t k = params.size(); k-- > 0;) {
    const auto [offset, count] = params[k];
    if (buckets_.empty() || buckets_.back().end - buckets_.back().begin >= per_bucket)
      buckets_.push_back({offset, offset + count, 0});
    Bucket& b = buckets_.back();
    ATTEND_CHECK(offset + count == b.begin || b.params == 0,
                 "GradientReducer: parameter {} is not contiguous with the next one", k);
    b.begin = offset;
    ++b.params;
    bucket_of_[k] = buckets_.size() - 1;
  }
  pending_.assign(buckets_.size(), 0);
  thread_ = std::thread([this] { run(); });
}

GradientReducer::~GradientReducer() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    quit_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void GradientReducer::arm() {
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t b = 0; b < buckets_.size(); ++b) pending_[b] = buckets_[b].params;
  armed_ = true;
  flush_ = false;
  next_ = done_ = 0;
}

void GradientReducer::ready(size_t i) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!armed_) return;
  if (--pending_[bucket_of_[i]] == 0) cv_.notify_all();
}

void GradientReducer::finish() {
  const auto t0 = std::chrono::steady_clock::now();
  std::unique_lock<std::mutex> lock(mu_);
  ATTEND_CHECK(armed_, "GradientReducer::finish without arm");
  flush_ = true;
  cv_.notify_all();
  cv_.wait(lock, [&] { return done_ == buckets_.size(); });
  armed_ = false;
  wait_seconds_ += seconds(t0);
  if (error_) {
    std::exception_ptr e = error_;
    error_ = nullptr;
    std::rethrow_exception(e);
  }
}

void GradientReducer::run() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] {
      return quit_ || (armed_ && next_ < buckets_.size() && (pending_[next_] == 0 || flush_));
    });
    if (quit_) return;
    const Bucket b = buckets_[next_];
    lock.unlock();
    const auto t0 = std::chrono::steady_clock::now();
    std::exception_ptr error;
    try {
      comm_.all_reduce_sum(flat_ + b.begin, b.end - b.begin);
    } catch (...) {
      error = std::current_exception();
    }
    const double s = seconds(t0);
    lock.lock();
    if (error) {  // finish() rethrows; no further bucket is attempted this step
      error_ = error;
      done_ = buckets_.size();
      next_ = buckets_.size();
      cv_.notify_all();
      continue;
    }
    comm_seconds_ += s;
    ++next_;
    ++done_;
    cv_.notify_all();
  }
}

}  // namespace attend::dist
