// The bookkeeping of a caching allocator for memory that work is queued on in streams (the CUDA
// allocator's; plain C++, so it is unit-tested without a GPU). Freed blocks wait in free lists
// keyed by (stream, size bucket) and are handed out again only to a request made on the same
// stream: work on one stream runs in order, so the new owner's work cannot start before the
// old owner's finished, and a block is never reused by one stream while another may still read
// it. Steady-state steps allocate nothing from the device. Thread-safe.
#pragma once
#include <cstddef>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace attend {

class CachingPool {
 public:
  /// raw_alloc returns nullptr when the memory is exhausted; raw_free releases its block.
  using RawAlloc = std::function<void*(size_t)>;
  using RawFree = std::function<void(void*)>;
  /// `what` names the memory in errors ("cuda:0").
  CachingPool(std::string what, RawAlloc raw_alloc, RawFree raw_free);
  ~CachingPool();  // releases the cached blocks (blocks still in use are the owners' to free)
  CachingPool(const CachingPool&) = delete;
  CachingPool& operator=(const CachingPool&) = delete;

  /// A block of at least `bytes` for work queued on `stream` (any token; null is a stream too).
  /// Out of memory: the cached blocks are released and the request retried once; then an
  /// attend::Error naming the memory, the size and what is in use, and what to lower.
  void* allocate(size_t bytes, void* stream);
  /// Returns a block from allocate() to the free list of the stream it was allocated on.
  void deallocate(void* p);
  /// Gives every cached (free) block back through raw_free.
  void release_cached();

  /// Requests are rounded up to 512 bytes (up to 1 MiB) or to 2 MiB multiples.
  static size_t bucket(size_t bytes);

  struct Stats {
    size_t in_use_bytes = 0, cached_bytes = 0, raw_allocations = 0, raw_frees = 0;
  };
  Stats stats() const;

 private:
  void release_cached_locked();

  std::string what_;
  RawAlloc raw_alloc_;
  RawFree raw_free_;
  mutable std::mutex mu_;
  struct Block {
    size_t size;
    void* stream;
  };
  std::unordered_map<void*, Block> in_use_;
  std::map<std::pair<void*, size_t>, std::vector<void*>> free_;  // (stream, size) -> blocks
  Stats stats_;
};

}  // namespace attend
