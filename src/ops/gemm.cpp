// Ops: matmul and linear (batched GEMM with broadcasting, fused bias). Validation, allocation and
// the (device, dtype) dispatch; declared in ops.h.
#include <algorithm>
#include <cmath>
#include <vector>

#include "ops/dispatch.h"

namespace attend::ops {
using namespace detail;

Tensor matmul(const Tensor& a_in, const Tensor& b_in, bool ta, bool tb) {
  constexpr std::string_view op = "matmul";
  check_float(op, "a", a_in);
  check_float(op, "b", b_in);
  check_same_dtype(op, a_in, b_in);
  check_same_device(op, a_in, b_in);
  ATTEND_CHECK(a_in.dim() >= 2 && b_in.dim() >= 2,
               "matmul: operands need >= 2 dimensions, got {} "
               "and {}",
               shape_str(a_in.shape()), shape_str(b_in.shape()));
  const Tensor a = a_in.contiguous(), b = b_in.contiguous();
  const int64_t M = ta ? a.size(-1) : a.size(-2), Ka = ta ? a.size(-2) : a.size(-1);
  const int64_t Kb = tb ? b.size(-1) : b.size(-2), N = tb ? b.size(-2) : b.size(-1);
  ATTEND_CHECK(Ka == Kb, "matmul: inner dimensions differ: a {} (trans {}) vs b {} (trans {})",
               shape_str(a.shape()), ta, shape_str(b.shape()), tb);
  Shape batch_shape(a.shape().begin(), a.shape().end() - 2);
  const int64_t batch = shape_numel(batch_shape);
  const bool b_shared = b.dim() == 2;
  if (!b_shared) {
    Shape bb(b.shape().begin(), b.shape().end() - 2);
    ATTEND_CHECK(bb == batch_shape, "matmul: batch dimensions differ: a {} vs b {}",
                 shape_str(a.shape()), shape_str(b.shape()));
  }
  Shape out_shape = batch_shape;
  out_shape.push_back(M);
  out_shape.push_back(N);
  Tensor c = Tensor::empty(out_shape, a.dtype(), a.device());
  gemm_on(op, ta, tb, M, N, Ka, 1.0, a, a.size(-1), M * Ka, b, b.size(-1), b_shared ? 0 : Ka * N,
          0.0, c, N, M * N, batch);
  return c;
}

MatmulGrads matmul_backward(const Tensor& dc, const Tensor& a, const Tensor& b, bool ta, bool tb) {
  check_float("matmul_backward", "dc", dc);
  if (b.dim() == 2 && a.dim() > 2) {
    // b is shared by every batch entry, so its gradient sums over the batch. Fold the batch into
    // the rows (a transposed is first made explicit) and reuse the 2-D rule.
    if (ta) {
      const Tensor at = a.transpose(-1, -2).contiguous();
      MatmulGrads g = matmul_backward(dc, at, b, false, tb);
      g.da = g.da.transpose(-1, -2).contiguous();
      return g;
    }
    const Tensor a2 = a.contiguous().reshape({-1, a.size(-1)});
    const Tensor dc2 = dc.contiguous().reshape({-1, dc.size(-1)});
    MatmulGrads g = matmul_backward(dc2, a2, b, false, tb);
    g.da = g.da.reshape(a.shape());
    return g;
  }
  // C = op(A) op(B):  dA = dC op(B)^T mapped back through op;  dB likewise.
  MatmulGrads g;
  if (!ta && !tb) {
    g.da = matmul(dc, b, false, true);
    g.db = matmul(a, dc, true, false);
  } else if (!ta && tb) {
    g.da = matmul(dc, b, false, false);
    g.db = matmul(dc, a, true, false);
  } else if (ta && !tb) {
    g.da = matmul(b, dc, false, true);
    g.db = matmul(a, dc, false, false);
  } else {
    g.da = matmul(b, dc, true, true);
    g.db = matmul(dc, a, true, true);
  }
  return g;
}

bool bf16_weights_supported() { return cpu::bf16_weights_supported(); }
const std::string& bf16_products_kernel() { return cpu::bf16_product_kernel(); }
bool bf16_products_native() { return cpu::bf16_products_native(); }

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias) {
  constexpr std::string_view op = "linear";
  check_float(op, "x", x);
  check_defined(op, "weight", w);
  // f32 activations with a bf16 weight: CPU inference with weights stored in bf16
  // (Module::store_weights); otherwise x and w share a dtype.
  const bool bf16_weight = x.dtype() == DType::kF32 && w.dtype() == DType::kBF16;
  if (bf16_weight) {
    ATTEND_CHECK(bf16_weights_supported(),
                 "linear: bf16 weights need a CPU with AVX-512; this one has none: run in fp32 "
                 "(--precision fp32)");
  } else {
    check_float(op, "weight", w);
    check_same_dtype(op, x, w);
  }
  check_same_device(op, x, w);
  check_dim(op, "weight", w, 2);
  ATTEND_CHECK(x.dim() >= 1 && x.size(-1) == w.size(1),
               "linear: input {} does not match weight {} (expected last dim {})",
               shape_str(x.shape()), shape_str(w.shape()), w.size(1));
  if (bias.defined()) {
    check_same_dtype(op, x, bias);
    check_same_device(op, x, bias);
    ATTEND_CHECK(bias.dim() == 1 && bias.size(0) == w.size(0),
                 "linear: bias {} does not match weight {}", shape_str(bias.shape()),
                 shape_str(w.shape()));
  }
  const int64_t K = w.size(1), N = w.size(0), R = rows_of(x);
  const Tensor xc = x.contiguous(), wc = w.contiguous();
  Shape out_shape = x.shape();
  out_shape.back() = N;
  Tensor y = Tensor::empty(out_shape, x.dtype(), x.device());
  if (bf16_weight) {  // the weight's cell: a bf16 weight on the CPU
    dispatch(op, wc, {.cpu_bf16 = [&] {
               cpu::gemm_bf16_weight(R, N, K, xc.data<float>(),
                                     reinterpret_cast<const uint16_t*>(wc.data<bf16>()),
                                     y.data<float>());
             }});
  } else {
    gemm_on(op, false, true, R, N, K, 1.0, xc, K, 0, wc, K, 0, 0.0, y, N, 0, 1);
  }
  if (bias.defined()) {
    const Tensor bc = bias.contiguous();
    dispatch(
        "linear (bias)", y,
        {.cpu_f32 =
             [&] { cpu::bias_add(y.data<float>(), bc.data<float>(), y.data<float>(), R, N); },
         .cpu_f64 =
             [&] { ref::bias_add(y.data<double>(), bc.data<double>(), y.data<double>(), R, N); },
         .cuda_f32 = ATTEND_ON_CUDA([&] {
           cuda::bias_add(queue(y), y.data<float>(), bc.data<float>(), y.data<float>(), R, N);
         })});
  }
  return y;
}

LinearGrads linear_backward(const Tensor& dy_in, const Tensor& x_in, const Tensor& w_in,
                            bool has_bias) {
  constexpr std::string_view op = "linear_backward";
  check_float(op, "dy", dy_in);
  check_same_dtype(op, dy_in, x_in);
  const int64_t K = w_in.size(1), N = w_in.size(0), R = rows_of(x_in);
  ATTEND_CHECK(dy_in.size(-1) == N && rows_of(dy_in) == R,
               "linear_backward: dy {} does not match input {} and weight {}",
               shape_str(dy_in.shape()), shape_str(x_in.shape()), shape_str(w_in.shape()));
  const Tensor dy = dy_in.contiguous(), x = x_in.contiguous(), w = w_in.contiguous();
  LinearGrads g;
  g.dx = Tensor::empty(x.shape(), x.dtype(), x.device());
  g.dw = Tensor::empty(w.shape(), w.dtype(), w.device());
  gemm_on(op, false, false, R, K, N, 1.0, dy, N, 0, w, K, 0, 0.0, g.dx, K, 0, 1);
  gemm_on(op, true, false, N, K, R, 1.0, dy, N, 0, x, K, 0, 0.0, g.dw, K, 0, 1);
  if (has_bias) g.dbias = sum_rows(dy);
  return g;
}

std::string decoding_gemm_kernel() { return cpu::small_m_gemm_description(); }
std::string cpu_gemm_description() { return cpu::gemm_description(); }

}  // namespace attend::ops
