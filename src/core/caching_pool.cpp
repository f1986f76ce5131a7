#include "core/caching_pool.h"

#include "core/error.h"

namespace attend {

CachingPool::CachingPool(std::string what, RawAlloc raw_alloc, RawFree raw_free)
    : what_(std::move(what)), raw_alloc_(std::move(raw_alloc)), raw_free_(std::move(raw_free)) {}

CachingPool::~CachingPool() { release_cached(); }

size_t CachingPool::bucket(size_t bytes) {
  if (bytes <= (size_t{1} << 20)) return (bytes + 511) / 512 * 512;
  const size_t mb2 = size_t{2} << 20;
  return (bytes + mb2 - 1) / mb2 * mb2;
}

void* CachingPool::allocate(size_t bytes, void* stream) {
  const size_t n = bucket(bytes == 0 ? 1 : bytes);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = free_.find({stream, n});
  void* p = nullptr;
  if (it != free_.end() && !it->second.empty()) {
    p = it->second.back();
    it->second.pop_back();
    stats_.cached_bytes -= n;
  } else {
    p = raw_alloc_(n);
    if (!p) {  // give the cached blocks of every stream back and try once more
      release_cached_locked();
      p = raw_alloc_(n);
    }
    ATTEND_CHECK(p != nullptr,
                 "out of memory on {}: {} bytes requested with {} bytes in use; lower the batch "
                 "(train.batch_tokens, or --batch-tokens when decoding)",
                 what_, n, stats_.in_use_bytes);
    ++stats_.raw_allocations;
  }
  in_use_.emplace(p, Block{n, stream});
  stats_.in_use_bytes += n;
  return p;
}

void CachingPool::deallocate(void* p) {
  if (!p) return;
  std::lock_guard<std::mutex> lock(mu_);
  const auto it = in_use_.find(p);
  ATTEND_CHECK(it != in_use_.end(), "{}: freeing a block this allocator did not hand out", what_);
  const Block b = it->second;
  in_use_.erase(it);
  stats_.in_use_bytes -= b.size;
  stats_.cached_bytes += b.size;
  free_[{b.stream, b.size}].push_back(p);
}

void CachingPool::release_cached() {
  std::lock_guard<std::mutex> lock(mu_);
  release_cached_locked();
}

void CachingPool::release_cached_locked() {
  for (auto& [key, blocks] : free_)
    for (void* p : blocks) {
      raw_free_(p);
      ++stats_.raw_frees;
    }
  free_.clear();
  stats_.cached_bytes = 0;
}

CachingPool::Stats CachingPool::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

}  // namespace attend
