// Ops: embedding gather and its scatter-add backward. Validation, allocation and the (device,
// dtype) dispatch; declared in ops.h.
#include <cmath>
#include <vector>

#include "ops/dispatch.h"

namespace attend::ops {
using namespace detail;

namespace {
// Id `id` at position i of the ids must lie in the vocabulary [0, V).
void check_id(std::string_view op, int32_t id, int64_t i, int64_t V) {
  ATTEND_CHECK(id >= 0 && id < V, "{}: id {} at position {} outside the vocabulary [0, {})", op, id,
               i, V);
}
// ids: i32 on the device of the table; their values are checked where they can be read without
// a transfer (on the CPU; a CUDA kernel reports the first bad one, check_reported_ids).
void check_ids(std::string_view op, const Tensor& ids, int64_t V, const Tensor& table) {
  check_dtype(op, "ids", ids, DType::kI32);
  check_same_device(op, ids, table);
  if (!ids.device().is_cpu()) return;
  const Tensor c = ids.contiguous();
  const int32_t* p = c.data<int32_t>();
  for (int64_t i = 0; i < c.numel(); ++i) check_id(op, p[i], i, V);
}
#ifdef ATTEND_WITH_CUDA
// A position a CUDA kernel reported (+ 1; 0: none) as holding an id outside [0, V): the CPU's
// check on the id read back from the device.
void check_reported_ids(std::string_view op, int32_t reported, const Tensor& ids, int64_t V) {
  if (reported != 0) check_id(op, index_at(ids, reported - 1), reported - 1, V);
}
#endif
}  // namespace

Tensor embedding(const Tensor& ids_in, const Tensor& weight) {
  constexpr std::string_view op = "embedding";
  check_defined(op, "weight", weight);
  const bool bf16_table = weight.dtype() == DType::kBF16;  // inference: rows widened to f32
  if (!bf16_table) check_float(op, "weight", weight);
  check_dim(op, "weight", weight, 2);
  check_ids(op, ids_in, weight.size(0), weight);
  const Tensor ids = ids_in.contiguous(), w = weight.contiguous();
  const int64_t D = w.size(1), n = ids.numel();
  Shape s = ids.shape();
  s.push_back(D);
  Tensor out = Tensor::empty(s, bf16_table ? DType::kF32 : w.dtype(), w.device());
  dispatch(
      op, w,
      {.cpu_f32 =
           [&] { cpu::embedding(ids.data<int32_t>(), w.data<float>(), out.data<float>(), n, D); },
       .cpu_f64 =
           [&] { ref::embedding(ids.data<int32_t>(), w.data<double>(), out.data<double>(), n, D); },
       .cpu_bf16 =
           [&] {
             cpu::embedding_bf16(ids.data<int32_t>(),
                                 reinterpret_cast<const uint16_t*>(w.data<bf16>()),
                                 out.data<float>(), n, D);
           },
       .cuda_f32 = ATTEND_ON_CUDA([&] {
         Tensor bad = device_reports(w, 1);
         cuda::embedding(queue(w), ids.data<int32_t>(), w.data<float>(), out.data<float>(), n, D,
                         w.size(0), bad.data<int32_t>());
         check_reported_ids(op, read_reports(bad)[0], ids, w.size(0));
       })});
  return out;
}

void embedding_backward(const Tensor& ids_in, const Tensor& dout_in, Tensor& dweight) {
  constexpr std::string_view op = "embedding_backward";
  check_float(op, "dweight", dweight);
  check_dim(op, "dweight", dweight, 2);
  check_ids(op, ids_in, dweight.size(0), dweight);
  check_same_dtype(op, dout_in, dweight);
  Shape expect = ids_in.shape();
  expect.push_back(dweight.size(1));
  ATTEND_CHECK(dout_in.shape() == expect,
               "embedding_backward: dout {} does not match ids {} and "
               "width {}",
               shape_str(dout_in.shape()), shape_str(ids_in.shape()), dweight.size(1));
  ATTEND_CHECK(dweight.is_contiguous(), "embedding_backward: dweight must be contiguous");
  const Tensor ids = ids_in.contiguous(), dout = dout_in.contiguous();
  dispatch(op, dweight,
           {.cpu_f32 =
                [&] {
                  cpu::embedding_backward(ids.data<int32_t>(), dout.data<float>(),
                                          dweight.data<float>(), ids.numel(), dweight.size(1));
                },
            .cpu_f64 =
                [&] {
                  ref::embedding_backward(ids.data<int32_t>(), dout.data<double>(),
                                          dweight.data<double>(), ids.numel(), dweight.size(1));
                },
            .cuda_f32 = ATTEND_ON_CUDA([&] {
              Tensor bad = device_reports(dweight, 1);
              cuda::embedding_backward(queue(dweight), ids.data<int32_t>(), dout.data<float>(),
                                       dweight.data<float>(), ids.numel(), dweight.size(1),
                                       dweight.size(0), bad.data<int32_t>());
              check_reported_ids(op, read_reports(bad)[0], ids, dweight.size(0));
            })});
}

}  // namespace attend::ops
