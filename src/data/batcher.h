// Token-based batching as in the paper: each batch holds about `max_tokens` source and
// `max_tokens` target tokens (counted with padding), sentences of similar length together.
// The batch order of an epoch is a pure function of (seed, epoch), so a run resumed from
// (epoch, index) sees exactly the batches the uninterrupted run would have seen. A background
// thread builds the next batches while the model trains.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "core/tensor.h"

namespace attend::data {

struct Example {
  std::vector<int32_t> src, tgt;  // subword ids, without BOS/EOS
};

struct Batch {
  Tensor src;          // i32 [B, S], padded with kPadId
  Tensor src_lengths;  // i32 [B]
  Tensor tgt_in;       // i32 [B, T]: BOS y_1 .. y_n, padded
  Tensor tgt_out;      // i32 [B * T]: y_1 .. y_n EOS, padded (ignored by the loss)
  Tensor tgt_lengths;  // i32 [B]: n + 1
  std::vector<int64_t> indices;  // example index of each row
  int64_t src_tokens = 0, tgt_tokens = 0;  // real tokens (tgt counts EOS)
  int64_t rows() const { return static_cast<int64_t>(indices.size()); }
};

/// Builds the padded tensors for the given examples (in the given order).
Batch make_batch(const std::vector<Example>& data, const std::vector<int64_t>& indices);

/// Splits `order` (example indices) into batches whose padded size
/// rows * max(S, T + 1) stays within max_tokens (a single over-long example gets its own batch).
std::vector<std::vector<int64_t>> pack_batches(const std::vector<Example>& data,
                                               const std::vector<int64_t>& order,
                                               int64_t max_tokens);

/// The batches of one training epoch: a Philox shuffle of all examples, sorted by length in
/// windows of ~`sort_batches` batches, packed, and the batch order shuffled again.
std::vector<std::vector<int64_t>> epoch_plan(const std::vector<Example>& data, int64_t max_tokens,
                                             uint64_t seed, int64_t epoch,
                                             int64_t sort_batches = 100);

/// Batches sorted by length, in one deterministic order (validation / translation); the
/// caller restores input order from Batch::indices.
std::vector<std::vector<int64_t>> sorted_plan(const std::vector<Example>& data, int64_t max_tokens);

/// Which batches of a stream one data-parallel rank builds: counting from the stream's start,
/// batch k belongs to rank (k / run) % ranks (a global step takes run = train.accumulate
/// batches per rank, ranks x run in all). The others' items come without a batch.
struct Share {
  int64_t rank = 0, ranks = 1, run = 1;
  bool owns(int64_t k) const { return (k / run) % ranks == rank; }
};

/// An endless stream of training batches from position (epoch, index), prepared by a
/// background thread `prefetch` batches ahead.
class BatchStream {
 public:
  BatchStream(const std::vector<Example>& data, int64_t max_tokens, uint64_t seed, int64_t epoch,
              int64_t index, int64_t prefetch = 8, Share share = {});
  ~BatchStream();
  BatchStream(const BatchStream&) = delete;
  BatchStream& operator=(const BatchStream&) = delete;

  struct Item {
    Batch batch;
    int64_t epoch = 0, index = 0;  // where this batch sits in the plan
    int64_t epoch_batches = 0;     // batches in its epoch
    bool owned = true;             // false: another rank's batch (not built)
  };
  Item next();

 private:
  void run();
  const std::vector<Example>& data_;
  int64_t max_tokens_;
  uint64_t seed_;
  int64_t epoch_, index_;
  size_t prefetch_;
  Share share_;
  std::deque<Item> queue_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::exception_ptr error_;
  std::thread thread_;
};

}  // namespace attend::data
