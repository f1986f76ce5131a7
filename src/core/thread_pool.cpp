// ThreadPool: workers wait on a condition variable; a job is split into contiguous chunks, one
// per participating thread, so each thread touches one contiguous range (good for caches).
#include "core/thread_pool.h"

#include <algorithm>
#include <cstdlib>
#include <memory>

#include "core/error.h"

namespace attend {

void set_blas_threads(int n);  // defined by the kernels library (BLAS/OpenMP thread count)
__attribute__((weak)) void set_blas_threads(int) {}

ThreadPool::ThreadPool(int num_threads) {
  ATTEND_CHECK(num_threads >= 1, "thread pool: num_threads must be >= 1, got {}", num_threads);
  for (int i = 1; i < num_threads; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_work_.notify_all();
  for (std::thread& t : workers_) t.join();
}

void ThreadPool::worker_loop(int id) {
  uint64_t seen = 0;
  for (;;) {
    const std::function<void(int64_t, int64_t)>* job;
    int64_t n, chunks;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_work_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      job = job_;
      n = job_n_;
      chunks = job_chunks_;
    }
    if (id < chunks) {
      const int64_t b = n * id / chunks, e = n * (id + 1) / chunks;
      try {
        (*job)(b, e);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu_);
        if (!error_) error_ = std::current_exception();
      }
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (--pending_ == 0) cv_done_.notify_one();
    }
  }
}

void ThreadPool::parallel_for(int64_t n, int64_t grain,
                              const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  const int64_t chunks = std::min<int64_t>(num_threads(), (n + grain - 1) / grain);
  if (chunks <= 1 || workers_.empty()) {
    fn(0, n);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    job_ = &fn;
    job_n_ = n;
    job_chunks_ = chunks;
    pending_ = static_cast<int>(workers_.size());
    error_ = nullptr;
    ++generation_;
  }
  cv_work_.notify_all();
  std::exception_ptr mine;
  try {
    fn(0, n / chunks);
  } catch (...) {
    mine = std::current_exception();
  }
  std::unique_lock<std::mutex> lock(mu_);
  cv_done_.wait(lock, [&] { return pending_ == 0; });
  job_ = nullptr;
  if (mine) std::rethrow_exception(mine);
  if (error_) std::rethrow_exception(error_);
}

namespace {
int default_threads() {
  if (const char* s = std::getenv("ATTEND_NUM_THREADS")) {
    const int n = std::atoi(s);
    if (n >= 1) return n;
  }
  return std::max(1u, std::thread::hardware_concurrency());
}
std::unique_ptr<ThreadPool>& pool_slot() {
  static std::unique_ptr<ThreadPool> pool;
  return pool;
}
}  // namespace

ThreadPool& thread_pool() {
  auto& p = pool_slot();
  if (!p) {
    p = std::make_unique<ThreadPool>(default_threads());
    set_blas_threads(p->num_threads());
  }
  return *p;
}

void set_num_threads(int n) {
  ATTEND_CHECK(n >= 1, "set_num_threads: expected n >= 1, got {}", n);
  auto& p = pool_slot();
  if (!p || p->num_threads() != n) p = std::make_unique<ThreadPool>(n);
  set_blas_threads(n);
}

int num_threads() { return thread_pool().num_threads(); }

}  // namespace attend
