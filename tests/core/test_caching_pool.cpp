// The caching allocator's bookkeeping (core/caching_pool.h), with fake raw allocations: blocks
// come back only to their own stream, sizes round to buckets, a steady state allocates nothing
// new, and running out of memory releases the cache, retries, then names what to lower.
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <set>

#include "core/caching_pool.h"
#include "util.h"

namespace attend {
namespace {

// A fake device of `capacity` bytes: raw allocations count against it.
struct FakeDevice {
  explicit FakeDevice(size_t bytes) : capacity(bytes) {}
  size_t capacity, used = 0;
  std::set<void*> live;
  CachingPool::RawAlloc alloc() {
    return [this](size_t n) -> void* {
      if (used + n > capacity) return nullptr;
      used += n;
      void* p = std::malloc(n);
      live.insert(p);
      sizes[p] = n;
      return p;
    };
  }
  CachingPool::RawFree free() {
    return [this](void* p) {
      used -= sizes.at(p);
      live.erase(p);
      std::free(p);
    };
  }
  std::map<void*, size_t> sizes;
};

int stream_a, stream_b;  // stream tokens

TEST(CachingPool, BucketsRoundUp) {
  EXPECT_EQ(CachingPool::bucket(1), 512u);
  EXPECT_EQ(CachingPool::bucket(512), 512u);
  EXPECT_EQ(CachingPool::bucket(513), 1024u);
  EXPECT_EQ(CachingPool::bucket(size_t{1} << 20), size_t{1} << 20);
  EXPECT_EQ(CachingPool::bucket((size_t{1} << 20) + 1), size_t{2} << 20);
  EXPECT_EQ(CachingPool::bucket((size_t{5} << 20)), size_t{6} << 20);
}

TEST(CachingPool, FreedBlocksReturnOnlyToTheirStream) {
  FakeDevice dev(size_t{64} << 20);
  CachingPool pool("fake:0", dev.alloc(), dev.free());
  void* a = pool.allocate(1000, &stream_a);
  pool.deallocate(a);
  // Another stream may still be reading a's old contents' neighbours: it gets a new block.
  void* b = pool.allocate(1000, &stream_b);
  EXPECT_NE(b, a);
  // The same stream gets the cached block back, and no raw allocation happens.
  const size_t raw = pool.stats().raw_allocations;
  void* a2 = pool.allocate(700, &stream_a);  // same bucket (1024)
  EXPECT_EQ(a2, a);
  EXPECT_EQ(pool.stats().raw_allocations, raw);
  // A different bucket on the same stream is a new block.
  void* big = pool.allocate(5000, &stream_a);
  EXPECT_NE(big, a);
  pool.deallocate(a2);
  pool.deallocate(b);
  pool.deallocate(big);
  EXPECT_EQ(pool.stats().in_use_bytes, 0u);
  EXPECT_EQ(pool.stats().cached_bytes, 1024u + 1024u + 5120u);
}

TEST(CachingPool, SteadyStateAllocatesNothingNew) {
  FakeDevice dev(size_t{64} << 20);
  CachingPool pool("fake:0", dev.alloc(), dev.free());
  auto one_step = [&] {
    std::vector<void*> blocks;
    for (size_t n : {size_t{100}, size_t{3} << 20, size_t{4096}, size_t{100}})
      blocks.push_back(pool.allocate(n, &stream_a));
    for (void* p : blocks) pool.deallocate(p);
  };
  one_step();
  const size_t raw = pool.stats().raw_allocations;
  EXPECT_EQ(raw, 4u);
  for (int i = 0; i < 5; ++i) one_step();
  EXPECT_EQ(pool.stats().raw_allocations, raw);
}

TEST(CachingPool, OutOfMemoryReleasesTheCacheThenNamesWhatToLower) {
  FakeDevice dev(size_t{6} << 20);
  CachingPool pool("fake:0", dev.alloc(), dev.free());
  void* a = pool.allocate(size_t{4} << 20, &stream_a);
  pool.deallocate(a);  // cached on stream a, still held from the device
  // Stream b needs 4 MiB: only after the cache is given back does it fit.
  void* b = pool.allocate(size_t{4} << 20, &stream_b);
  EXPECT_NE(b, nullptr);
  EXPECT_EQ(pool.stats().raw_frees, 1u);
  EXPECT_EQ(pool.stats().cached_bytes, 0u);
  // Nothing left to release: a clear error with the size and what is in use.
  EXPECT_TRUE(test::throws_with([&] { pool.allocate(size_t{4} << 20, &stream_b); },
                                {"out of memory on fake:0", "4194304 bytes requested",
                                 "4194304 bytes in use", "batch_tokens"}));
  pool.deallocate(b);
  EXPECT_TRUE(
      test::throws_with([&] { pool.deallocate(&stream_a); }, {"fake:0", "did not hand out"}));
}

TEST(CachingPool, DestructionGivesCachedBlocksBack) {
  FakeDevice dev(size_t{64} << 20);
  {
    CachingPool pool("fake:0", dev.alloc(), dev.free());
    for (int i = 0; i < 3; ++i) pool.deallocate(pool.allocate(size_t{1} << 12, &stream_a));
    void* p = pool.allocate(100, &stream_b);
    pool.deallocate(p);
  }
  EXPECT_TRUE(dev.live.empty());
  EXPECT_EQ(dev.used, 0u);
}

}  // namespace
}  // namespace attend
