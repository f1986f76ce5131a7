// A fixed-size thread pool for the CPU kernels' parallel loops. Its size is a run-time setting
// (set_num_threads, the CLI's --threads); the BLAS library is told the same number.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace attend {

class ThreadPool {
 public:
  explicit ThreadPool(int num_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return static_cast<int>(workers_.size()) + 1; }

  /// Calls fn(begin, end) over [0, n) split into at most num_threads() contiguous chunks of at
  /// least `grain` items. The calling thread runs the first chunk. Exceptions are rethrown.
  void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

 private:
  void worker_loop(int id);
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_work_, cv_done_;
  const std::function<void(int64_t, int64_t)>* job_ = nullptr;
  int64_t job_n_ = 0, job_chunks_ = 0;
  uint64_t generation_ = 0;
  int pending_ = 0;
  bool stop_ = false;
  std::exception_ptr error_;
};

/// The process-wide pool (default: hardware threads, or ATTEND_NUM_THREADS).
ThreadPool& thread_pool();
/// Resizes the global pool and the BLAS thread count. Not to be called inside a parallel loop.
void set_num_threads(int n);
int num_threads();

/// parallel_for on the global pool.
inline void parallel_for(int64_t n, int64_t grain,
                         const std::function<void(int64_t, int64_t)>& fn) {
  thread_pool().parallel_for(n, grain, fn);
}

}  // namespace attend
