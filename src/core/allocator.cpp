// CPU heap and arena allocators.
#include "core/allocator.h"

#include <cstdlib>
#include <new>

#include "core/context.h"
#include "core/error.h"

namespace attend {
namespace {

size_t round_up(size_t n, size_t a) { return (n + a - 1) / a * a; }

void* aligned_malloc(size_t bytes) {
  void* p = std::aligned_alloc(kCpuAlignment, round_up(bytes == 0 ? 1 : bytes, kCpuAlignment));
  if (!p) throw std::bad_alloc();
  return p;
}

class CpuHeapAllocator final : public Allocator {
 public:
  void* allocate(size_t bytes) override { return aligned_malloc(bytes); }
  void deallocate(void* p, size_t) override { std::free(p); }
  Device device() const override { return Device::cpu(); }
};

thread_local Context tls_context;

}  // namespace

const Context& current_context() { return tls_context; }

StreamScope::StreamScope(void* stream) : previous_(tls_context.cuda_stream) {
  tls_context.cuda_stream = stream;
}
StreamScope::~StreamScope() { tls_context.cuda_stream = previous_; }

ProductsScope::ProductsScope(DType products) : previous_(tls_context.products) {
  ATTEND_CHECK(products == DType::kF32 || products == DType::kBF16,
               "products: expected f32 or bf16, got {}", dtype_name(products));
  tls_context.products = products;
}
ProductsScope::~ProductsScope() { tls_context.products = previous_; }

Allocator* cpu_heap_allocator() {
  static CpuHeapAllocator heap;
  return &heap;
}

Allocator* current_cpu_allocator() {
  return tls_context.workspace ? tls_context.workspace : cpu_heap_allocator();
}

ArenaScope::ArenaScope(Arena* arena) : previous_(tls_context.workspace) {
  tls_context.workspace = arena;
}
ArenaScope::~ArenaScope() { tls_context.workspace = previous_; }
HeapScope::HeapScope() : previous_(tls_context.workspace) { tls_context.workspace = nullptr; }
HeapScope::~HeapScope() { tls_context.workspace = previous_; }

Arena::Arena(size_t initial_bytes) { add_block(initial_bytes); }

Arena::~Arena() {
  for (Block& b : blocks_) std::free(b.data);
}

void Arena::add_block(size_t min_bytes) {
  const size_t size = round_up(min_bytes, size_t{1} << 16);
  blocks_.push_back(Block{static_cast<char*>(aligned_malloc(size)), size, 0});
  ++system_allocs_;
}

void* Arena::allocate(size_t bytes) {
  const size_t n = round_up(bytes == 0 ? 1 : bytes, kCpuAlignment);
  Block* b = &blocks_.back();
  if (b->used + n > b->size) {
    add_block(std::max(n, b->size * 2));
    b = &blocks_.back();
  }
  void* p = b->data + b->used;
  b->used += n;
  in_use_ += n;
  peak_ = std::max(peak_, in_use_);
  return p;
}

size_t Arena::capacity() const {
  size_t c = 0;
  for (const Block& b : blocks_) c += b.size;
  return c;
}

void Arena::reset() {
  if (blocks_.size() > 1) {
    const size_t total = capacity();
    for (Block& b : blocks_) std::free(b.data);
    blocks_.clear();
    add_block(total);
  }
  blocks_.back().used = 0;
  in_use_ = 0;
}

}  // namespace attend
