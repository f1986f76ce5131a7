// Ops: embedding gather and its scatter-add backward. Validation, allocation and the (device,
// dtype) dispatch; declared in ops.h.
#include <cmath>
#include <vector>

#include "ops/dispatch.h"

namespace attend::ops {
using namespace detail;

namespace {
void check_ids(std::string_view op, const Tensor& ids, int64_t V) {
  check_dtype(op, "ids", ids, DType::kI32);
  check_cpu(op, ids);
  const Tensor c = ids.contiguous();
  const int32_t* p = c.data<int32_t>();
  for (int64_t i = 0; i < c.numel(); ++i)
    ATTEND_CHECK(p[i] >= 0 && p[i] < V, "{}: id {} at position {} outside the vocabulary [0, {})",
                 op, p[i], i, V);
}
}  // namespace

Tensor embedding(const Tensor& ids_in, const Tensor& weight) {
  constexpr std::string_view op = "embedding";
  check_defined(op, "weight", weight);
  const bool bf16_table = weight.dtype() == DType::kBF16;  // inference: rows widened to f32
  if (bf16_table)
    check_cpu(op, weight);
  else
    check_float(op, "weight", weight);
  check_dim(op, "weight", weight, 2);
  check_ids(op, ids_in, weight.size(0));
  const Tensor ids = ids_in.contiguous(), w = weight.contiguous();
  const int64_t D = w.size(1), n = ids.numel();
  Shape s = ids.shape();
  s.push_back(D);
  Tensor out = Tensor::empty(s, bf16_table ? DType::kF32 : w.dtype(), w.device());
  if (bf16_table) {  // exactly the stored values
    const int32_t* id = ids.data<int32_t>();
    const bf16* table = w.data<bf16>();
    float* o = out.data<float>();
    for (int64_t i = 0; i < n; ++i)
      for (int64_t d = 0; d < D; ++d) o[i * D + d] = from_bf16(table[id[i] * D + d]);
    return out;
  }
  if (cpu_path(op, w) == Path::kCpuF32)
    cpu::embedding(ids.data<int32_t>(), w.data<float>(), out.data<float>(), n, D);
  else
    ref::embedding(ids.data<int32_t>(), w.data<double>(), out.data<double>(), n, D);
  return out;
}

void embedding_backward(const Tensor& ids_in, const Tensor& dout_in, Tensor& dweight) {
  constexpr std::string_view op = "embedding_backward";
  check_float(op, "dweight", dweight);
  check_dim(op, "dweight", dweight, 2);
  check_ids(op, ids_in, dweight.size(0));
  check_same_dtype(op, dout_in, dweight);
  Shape expect = ids_in.shape();
  expect.push_back(dweight.size(1));
  ATTEND_CHECK(dout_in.shape() == expect,
               "embedding_backward: dout {} does not match ids {} and "
               "width {}",
               shape_str(dout_in.shape()), shape_str(ids_in.shape()), dweight.size(1));
  ATTEND_CHECK(dweight.is_contiguous(), "embedding_backward: dweight must be contiguous");
  const Tensor ids = ids_in.contiguous(), dout = dout_in.contiguous();
  if (cpu_path(op, dweight) == Path::kCpuF32)
    cpu::embedding_backward(ids.data<int32_t>(), dout.data<float>(), dweight.data<float>(),
                            ids.numel(), dweight.size(1));
  else
    ref::embedding_backward(ids.data<int32_t>(), dout.data<double>(), dweight.data<double>(),
                            ids.numel(), dweight.size(1));
}

}  // namespace attend::ops
