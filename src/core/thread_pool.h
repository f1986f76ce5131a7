// Parallel loops for the CPU kernels. The pool runs on the OpenMP runtime that the BLAS
// libraries (oneDNN, OpenBLAS) use too, so kernels and GEMMs share one set of worker threads:
// no oversubscription, and no BLAS threads spin-waiting against ours between calls. Its size is
// a run-time setting (set_num_threads, the CLI's --threads), applied to the BLAS as well.
#pragma once
#include <algorithm>
#include <cstdint>
#include <functional>

namespace attend {

class ThreadPool {
 public:
  explicit ThreadPool(int num_threads);

  int num_threads() const { return num_threads_; }

  /// Calls fn(begin, end) over [0, n) split into at most num_threads() contiguous chunks of at
  /// least `grain` items, one per thread. Inside another parallel region it runs serially.
  /// The first exception thrown by any chunk is rethrown after all chunks finished.
  void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

 private:
  int num_threads_;
};

/// The process-wide pool (default: hardware threads, or ATTEND_NUM_THREADS).
ThreadPool& thread_pool();
/// Resizes the global pool and the BLAS thread count.
void set_num_threads(int n);
int num_threads();

/// The grain of a loop over rows of `cols` elements: rows enough for ~16K elements per chunk.
inline int64_t row_grain(int64_t cols) {
  return std::max<int64_t>(1, 16384 / std::max<int64_t>(cols, 1));
}

/// parallel_for on the global pool.
inline void parallel_for(int64_t n, int64_t grain,
                         const std::function<void(int64_t, int64_t)>& fn) {
  thread_pool().parallel_for(n, grain, fn);
}

}  // namespace attend
