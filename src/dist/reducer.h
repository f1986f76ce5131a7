// Gradient all-reduce in buckets that start while backward is still running (as data-parallel
// training does it in PyTorch's DDP): the flat gradient buffer is cut, from its end, into
// buckets of about `bucket_bytes` (backward finishes the last parameters first); a bucket is
// summed over ranks as soon as every parameter in it has reported its gradient ready, by a
// communication thread, while the main thread goes on with backward. Buckets are reduced in a
// fixed order, the same on every rank, so the ranks' collective calls always match.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "dist/communicator.h"

namespace attend::dist {

class GradientReducer {
 public:
  /// `flat`: the gradient buffer (f32, CPU, contiguous; a handle on its storage is kept);
  /// `params`: (offset, count) of each parameter's gradient in it, in buffer order,
  /// contiguous. bucket_bytes > 0.
  GradientReducer(Communicator& comm, Tensor flat, std::vector<std::pair<int64_t, int64_t>> params,
                  int64_t bucket_bytes);
  ~GradientReducer();
  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;

  /// The next backward pass's ready() calls start buckets (earlier passes of an accumulated
  /// step only accumulate locally).
  void arm();
  /// Parameter i's gradient is final for this step (called from the backward thread).
  void ready(size_t i);
  /// Backward is done: buckets not yet started (parameters that got no gradient) start now;
  /// returns when every bucket has been summed over the ranks.
  void finish();

  int64_t num_buckets() const { return static_cast<int64_t>(buckets_.size()); }
  /// Totals since construction: seconds the communication thread spent in all-reduces, and
  /// seconds finish() waited for them (the communication backward did not hide).
  double seconds_communicating() const { return comm_seconds_; }
  double seconds_waiting() const { return wait_seconds_; }

 private:
  void run();
  struct Bucket {
    int64_t begin, end;  // element range of the flat buffer
    int64_t params;      // parameters in it
  };
  Communicator& comm_;
  Tensor tensor_;
  float* flat_;
  std::vector<Bucket> buckets_;    // in reduction order (end of the buffer first)
  std::vector<size_t> bucket_of_;  // parameter -> bucket
  std::vector<int64_t> pending_;   // per bucket: parameters not yet ready
  std::mutex mu_;
  std::condition_variable cv_;
  bool armed_ = false, flush_ = false, quit_ = false;
  size_t next_ = 0;  // next bucket to reduce
  size_t done_ = 0;  // buckets reduced this step
  double comm_seconds_ = 0, wait_seconds_ = 0;
  std::exception_ptr error_;  // a failed all-reduce, rethrown by finish()
  std::thread thread_;
};

}  // namespace attend::dist
