// The execution context: what an op needs besides its tensors. A tensor carries its device and
// element type, and ops dispatch on those (ops/dispatch.h: one (device, dtype) switch per op
// whose default throws "not implemented for <device> <dtype>"). The context carries the rest,
// per thread:
//   * workspace -- the allocator new CPU tensors (op outputs and temporaries) come from: the
//     heap, or a training step's / decoding step's arena (ArenaScope, HeapScope);
//   * stream    -- the CUDA stream device work is queued on (StreamScope; null: the device's
//     default stream). CPU work runs on the calling thread and the shared thread pool.
//   * products  -- the precision f32 tensors' matrix products run in (ProductsScope): f32, or
//     bf16 (operands rounded to bf16, sums in f32; mixed-precision training). Only the products
//     change: tensors, and every other op, stay f32.
// Each thread has its own context, so two threads (a server's sessions, say) never share a
// workspace or a stream by accident. Model code does not see the context; modules choose their
// device and compute dtype with Module::to.
#pragma once
#include "core/allocator.h"
#include "core/types.h"

namespace attend {

struct Context {
  Allocator* workspace = nullptr;  // CPU allocations; null: the process-wide heap
  void* cuda_stream = nullptr;     // cudaStream_t; null: the default stream
  DType products = DType::kF32;    // kF32 or kBF16
};

/// This thread's context.
const Context& current_context();

/// While alive, CUDA work launched on this thread is queued on `stream` (a cudaStream_t, e.g.
/// CudaStream::handle()).
class StreamScope {
 public:
  explicit StreamScope(void* cuda_stream);
  ~StreamScope();
  StreamScope(const StreamScope&) = delete;
  StreamScope& operator=(const StreamScope&) = delete;

 private:
  void* previous_;
};

/// While alive, matrix products of f32 tensors on this thread run with `products` operands
/// (kF32 or kBF16; anything else is an error).
class ProductsScope {
 public:
  explicit ProductsScope(DType products);
  ~ProductsScope();
  ProductsScope(const ProductsScope&) = delete;
  ProductsScope& operator=(const ProductsScope&) = delete;

 private:
  DType previous_;
};

}  // namespace attend
