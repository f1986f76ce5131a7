// ThreadPool on OpenMP: one parallel region per loop, each thread takes one contiguous chunk.
#include "core/thread_pool.h"

#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <exception>
#include <memory>
#include <thread>

#include "core/error.h"

namespace attend {

void set_blas_threads(int n);  // defined by the kernels library (OpenBLAS's own thread count)
__attribute__((weak)) void set_blas_threads(int) {}

ThreadPool::ThreadPool(int num_threads) : num_threads_(num_threads) {
  ATTEND_CHECK(num_threads >= 1, "thread pool: num_threads must be >= 1, got {}", num_threads);
}

void ThreadPool::parallel_for(int64_t n, int64_t grain,
                              const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  const int64_t chunks = std::min<int64_t>(num_threads_, (n + grain - 1) / grain);
  if (chunks <= 1 || omp_in_parallel()) {
    fn(0, n);
    return;
  }
  std::exception_ptr error;
#pragma omp parallel num_threads(static_cast<int>(chunks))
  {
    const int64_t id = omp_get_thread_num(), team = omp_get_num_threads();
    const int64_t b = n * id / team, e = n * (id + 1) / team;
    try {
      fn(b, e);
    } catch (...) {
#pragma omp critical(attend_parallel_for_error)
      if (!error) error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
}

namespace {
int default_threads() {
  if (const char* s = std::getenv("ATTEND_NUM_THREADS")) {
    const int n = std::atoi(s);
    if (n >= 1) return n;
  }
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
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
    omp_set_num_threads(p->num_threads());
    set_blas_threads(p->num_threads());
  }
  return *p;
}

void set_num_threads(int n) {
  ATTEND_CHECK(n >= 1, "set_num_threads: expected n >= 1, got {}", n);
  auto& p = pool_slot();
  if (!p || p->num_threads() != n) p = std::make_unique<ThreadPool>(n);
  omp_set_num_threads(n);
  set_blas_threads(n);
}

int num_threads() { return thread_pool().num_threads(); }

}  // namespace attend
