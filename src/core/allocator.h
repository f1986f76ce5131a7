// Memory allocators: a 64-byte-aligned CPU heap allocator, a CPU arena for the activations of
// one training step (bump allocation, reset every step, no system calls after the first step),
// and the CUDA caching allocator (device.h, built with ATTEND_CUDA).
#pragma once
#include <cstddef>
#include <vector>

#include "core/types.h"

namespace attend {

class Allocator {
 public:
  virtual ~Allocator() = default;
  virtual void* allocate(size_t bytes) = 0;
  virtual void deallocate(void* p, size_t bytes) = 0;
  virtual Device device() const = 0;
};

constexpr size_t kCpuAlignment = 64;  // one cache line; also the AVX-512 vector width

/// The process-wide aligned CPU heap allocator.
Allocator* cpu_heap_allocator();

/// Bump allocator over large blocks. deallocate() is a no-op; reset() frees everything at once.
/// After a reset that found more than one block, the blocks are merged into one of the total
/// size, so a steady-state training step allocates nothing from the system.
/// Contract: no tensor allocated from the arena may be used after reset().
class Arena final : public Allocator {
 public:
  explicit Arena(size_t initial_bytes = size_t{1} << 20);
  ~Arena() override;
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  void* allocate(size_t bytes) override;
  void deallocate(void*, size_t) override {}
  Device device() const override { return Device::cpu(); }

  void reset();
  size_t bytes_in_use() const { return in_use_; }
  size_t peak_bytes() const { return peak_; }
  size_t capacity() const;
  size_t num_blocks() const { return blocks_.size(); }
  /// Number of times the arena asked the system for memory (tests check it stops growing).
  size_t system_allocations() const { return system_allocs_; }

 private:
  struct Block {
    char* data;
    size_t size;
    size_t used;
  };
  void add_block(size_t min_bytes);
  std::vector<Block> blocks_;
  size_t in_use_ = 0, peak_ = 0, system_allocs_ = 0;
};

/// The allocator new CPU tensors come from on this thread (the heap unless an ArenaScope is live).
Allocator* current_cpu_allocator();

/// While alive, new CPU tensors created on this thread are allocated from `arena`.
class ArenaScope {
 public:
  explicit ArenaScope(Arena* arena);
  ~ArenaScope();
  ArenaScope(const ArenaScope&) = delete;
  ArenaScope& operator=(const ArenaScope&) = delete;

 private:
  Allocator* previous_;
};

/// Lets parameters, gradients and optimizer state escape an ArenaScope.
class HeapScope {
 public:
  HeapScope();
  ~HeapScope();
  HeapScope(const HeapScope&) = delete;
  HeapScope& operator=(const HeapScope&) = delete;

 private:
  Allocator* previous_;
};

}  // namespace attend
