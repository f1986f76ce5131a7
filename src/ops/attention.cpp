// Ops: attention (fused flash kernel or unfused reference) and its backward. Validation, allocation
// and the (device, dtype) dispatch; declared in ops.h.
#include <cmath>
#include <vector>

#include "ops/dispatch.h"

namespace attend::ops {
using namespace detail;

namespace {
kernels::AttnDims check_attention(std::string_view op, const Tensor& q_in, const Tensor& k_in,
                                  const Tensor& v_in, const AttentionMask& mask,
                                  const Tensor& kv_rows = {}) {
  check_float(op, "q", q_in);
  check_same_dtype(op, q_in, k_in);
  check_same_dtype(op, q_in, v_in);
  check_same_device(op, q_in, k_in);
  check_same_device(op, q_in, v_in);
  check_dim(op, "q", q_in, 4);
  check_dim(op, "k", k_in, 4);
  check_dim(op, "v", v_in, 4);
  ATTEND_CHECK(k_in.shape() == v_in.shape(), "{}: k {} and v {} must have the same shape", op,
               shape_str(k_in.shape()), shape_str(v_in.shape()));
  ATTEND_CHECK((kv_rows.defined() || q_in.size(0) == k_in.size(0)) && q_in.size(1) == k_in.size(1),
               "{}: q {} and k {} must agree in batch and heads", op, shape_str(q_in.shape()),
               shape_str(k_in.shape()));
  ATTEND_CHECK(q_in.size(3) == k_in.size(3), "{}: head width of q {} differs from k {}", op,
               shape_str(q_in.shape()), shape_str(k_in.shape()));
  kernels::AttnDims d{q_in.size(0), q_in.size(1), q_in.size(2), k_in.size(2), q_in.size(3)};
  check_mask(op, mask, d.B, d.Tk, q_in);
  if (kv_rows.defined()) {
    check_dtype(op, "kv_rows", kv_rows, DType::kI32);
    check_same_device(op, kv_rows, q_in);
    ATTEND_CHECK(kv_rows.dim() == 1 && kv_rows.size(0) == d.B && kv_rows.is_contiguous(),
                 "{}: kv_rows must be a contiguous [{}] (the batch of q), got {}", op, d.B,
                 shape_str(kv_rows.shape()));
    const int32_t* r = kv_rows.data<int32_t>();
    if (kv_rows.device().is_cpu())  // values checked where they can be read without a transfer
      for (int64_t b = 0; b < d.B; ++b)
        ATTEND_CHECK(r[b] >= 0 && r[b] < k_in.size(0),
                     "{}: kv_rows[{}] = {} outside [0, {}) (the batch of k {})", op, b, r[b],
                     k_in.size(0), shape_str(k_in.shape()));
    d.kv_rows = r;
    d.Bkv = k_in.size(0);
  }
  return d;
}

// The kernel view of an attention score bias (see ops::attention), checked against the sizes;
// `bias` contiguous (or undefined: no bias).
template <typename T>
kernels::ScoreBias<T> score_bias(std::string_view op, const Tensor& bias, const Tensor& q,
                                 const kernels::AttnDims& d, int64_t query_offset) {
  if (!bias.defined()) return {};
  check_same_dtype(op, q, bias);
  check_same_device(op, q, bias);
  const int64_t P = d.Tq + query_offset, span = P + d.Tk - 1;
  ATTEND_CHECK((bias.dim() == 2 && bias.shape() == Shape({d.H, span})) ||
                   (bias.dim() == 3 && bias.shape() == Shape({d.B, d.H, span})),
               "{}: bias {} must be [{}, {}] or [{}, {}, {}] ({} queries at offset {}, {} keys)",
               op, shape_str(bias.shape()), d.H, span, d.B, d.H, span, d.Tq, query_offset, d.Tk);
  return {bias.data<T>(), bias.dim() == 3 ? d.H * span : 0, span, P - 1};
}

// The bias gradient shaped like the bias: the kernels' [B, H, span], summed over the batch for a
// shared [H, span] bias.
Tensor shaped_bias_grad(const Tensor& per_row, const Tensor& bias) {
  if (bias.dim() == 3) return per_row;
  const int64_t B = per_row.size(0), H = per_row.size(1), span = per_row.size(2);
  return sum_last(per_row.reshape({B, H * span}).transpose(0, 1).contiguous()).reshape({H, span});
}
}  // namespace

AttentionOut attention(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in,
                       const AttentionMask& mask, double scale, const Tensor& kv_rows,
                       const Tensor& bias_in) {
  constexpr std::string_view op = "attention";
  const kernels::AttnDims d = check_attention(op, q_in, k_in, v_in, mask, kv_rows);
  const Tensor q = q_in.contiguous(), k = k_in.contiguous(), v = v_in.contiguous();
  const Tensor bias = bias_in.defined() ? bias_in.contiguous() : Tensor();
  AttentionOut out;
  out.out = like(q);
  out.lse = Tensor::empty({d.B, d.H, d.Tq}, q.dtype(), q.device());
  const kernels::Mask km = to_kernel_mask(mask);
  dispatch(op, q,
           {.cpu_f32 =
                [&] {
                  cpu::flash_attention<float>(q.data<float>(), k.data<float>(), v.data<float>(),
                                              out.out.data<float>(), out.lse.data<float>(), d, km,
                                              scale,
                                              score_bias<float>(op, bias, q, d, mask.query_offset));
                },
            .cpu_f64 =
                [&] {
                  cpu::flash_attention<double>(
                      q.data<double>(), k.data<double>(), v.data<double>(), out.out.data<double>(),
                      out.lse.data<double>(), d, km, scale,
                      score_bias<double>(op, bias, q, d, mask.query_offset));
                },
            .cuda_f32 = ATTEND_ON_CUDA([&] {
              cuda::flash_attention(queue(q), q.data<float>(), k.data<float>(), v.data<float>(),
                                    out.out.data<float>(), out.lse.data<float>(), d, km,
                                    static_cast<float>(scale),
                                    score_bias<float>(op, bias, q, d, mask.query_offset));
            })});
  return out;
}

AttentionGrads attention_backward(const Tensor& dout_in, const Tensor& q_in, const Tensor& k_in,
                                  const Tensor& v_in, const AttentionOut& saved,
                                  const AttentionMask& mask, double scale, const Tensor& bias_in) {
  constexpr std::string_view op = "attention_backward";
  const kernels::AttnDims d = check_attention(op, q_in, k_in, v_in, mask);
  check_same_dtype(op, dout_in, q_in);
  check_same_shape(op, dout_in, q_in);
  check_same_shape(op, saved.out, q_in);
  ATTEND_CHECK(saved.lse.shape() == Shape({d.B, d.H, d.Tq}),
               "attention_backward: lse {} does not match q {}", shape_str(saved.lse.shape()),
               shape_str(q_in.shape()));
  const Tensor dout = dout_in.contiguous(), q = q_in.contiguous(), k = k_in.contiguous(),
               v = v_in.contiguous(), o = saved.out.contiguous(), lse = saved.lse.contiguous();
  const Tensor bias = bias_in.defined() ? bias_in.contiguous() : Tensor();
  AttentionGrads g{like(q), like(k), like(v), Tensor()};
  // Per batch row [B, H, span] (span: the bias's, checked by score_bias).
  Tensor dbias =
      bias.defined() ? Tensor::empty({d.B, d.H, bias.size(-1)}, q.dtype(), q.device()) : Tensor();
  const kernels::Mask km = to_kernel_mask(mask);
  dispatch(op, q,
           {.cpu_f32 =
                [&] {
                  cpu::flash_attention_backward<float>(
                      q.data<float>(), k.data<float>(), v.data<float>(), o.data<float>(),
                      lse.data<float>(), dout.data<float>(), g.dq.data<float>(), g.dk.data<float>(),
                      g.dv.data<float>(), d, km, scale,
                      score_bias<float>(op, bias, q, d, mask.query_offset),
                      bias.defined() ? dbias.data<float>() : nullptr);
                },
            .cpu_f64 =
                [&] {
                  cpu::flash_attention_backward<double>(
                      q.data<double>(), k.data<double>(), v.data<double>(), o.data<double>(),
                      lse.data<double>(), dout.data<double>(), g.dq.data<double>(),
                      g.dk.data<double>(), g.dv.data<double>(), d, km, scale,
                      score_bias<double>(op, bias, q, d, mask.query_offset),
                      bias.defined() ? dbias.data<double>() : nullptr);
                },
            .cuda_f32 = ATTEND_ON_CUDA([&] {
              Tensor scratch = Tensor::empty({d.B * d.H * d.Tq}, DType::kF32, q.device());
              cuda::flash_attention_backward(
                  queue(q), q.data<float>(), k.data<float>(), v.data<float>(), o.data<float>(),
                  lse.data<float>(), dout.data<float>(), g.dq.data<float>(), g.dk.data<float>(),
                  g.dv.data<float>(), scratch.data<float>(), d, km, static_cast<float>(scale),
                  score_bias<float>(op, bias, q, d, mask.query_offset),
                  bias.defined() ? dbias.data<float>() : nullptr);
            })});
  if (bias.defined()) g.dbias = shaped_bias_grad(dbias, bias);
  return g;
}

ReferenceAttentionOut attention_reference(const Tensor& q_in, const Tensor& k_in,
                                          const Tensor& v_in, const AttentionMask& mask,
                                          double scale, const Tensor& bias_in) {
  constexpr std::string_view op = "attention_reference";
  const kernels::AttnDims d = check_attention(op, q_in, k_in, v_in, mask);
  const Tensor q = q_in.contiguous(), k = k_in.contiguous(), v = v_in.contiguous();
  const Tensor bias = bias_in.defined() ? bias_in.contiguous() : Tensor();
  ReferenceAttentionOut out;
  out.out = like(q);
  out.probs = Tensor::empty({d.B, d.H, d.Tq, d.Tk}, q.dtype(), q.device());
  const kernels::Mask km = to_kernel_mask(mask);
  dispatch(op, q,
           {.cpu_f32 =
                [&] {
                  cpu::attention(q.data<float>(), k.data<float>(), v.data<float>(),
                                 out.out.data<float>(), out.probs.data<float>(), d, km, scale,
                                 score_bias<float>(op, bias, q, d, mask.query_offset));
                },
            .cpu_f64 =
                [&] {
                  ref::attention(q.data<double>(), k.data<double>(), v.data<double>(),
                                 out.out.data<double>(), out.probs.data<double>(), d, km, scale,
                                 score_bias<double>(op, bias, q, d, mask.query_offset));
                },
            .cuda_f32 = ATTEND_ON_CUDA([&] {
              cuda::attention(queue(q), q.data<float>(), k.data<float>(), v.data<float>(),
                              out.out.data<float>(), out.probs.data<float>(), d, km,
                              static_cast<float>(scale),
                              score_bias<float>(op, bias, q, d, mask.query_offset));
            })});
  return out;
}

AttentionGrads attention_reference_backward(const Tensor& dout_in, const Tensor& q_in,
                                            const Tensor& k_in, const Tensor& v_in,
                                            const Tensor& probs, double scale,
                                            const Tensor& bias_in, int64_t query_offset) {
  constexpr std::string_view op = "attention_reference_backward";
  check_float(op, "dout", dout_in);
  check_same_shape(op, dout_in, q_in);
  const kernels::AttnDims d{q_in.size(0), q_in.size(1), q_in.size(2), k_in.size(2), q_in.size(3)};
  ATTEND_CHECK(probs.shape() == Shape({d.B, d.H, d.Tq, d.Tk}),
               "{}: probs {} do not match q {} and k {}", op, shape_str(probs.shape()),
               shape_str(q_in.shape()), shape_str(k_in.shape()));
  const Tensor dout = dout_in.contiguous(), q = q_in.contiguous(), k = k_in.contiguous(),
               v = v_in.contiguous(), p = probs.contiguous();
  const Tensor bias = bias_in.defined() ? bias_in.contiguous() : Tensor();
  AttentionGrads g{like(q), like(k), like(v), Tensor()};
  Tensor dbias =
      bias.defined() ? Tensor::empty({d.B, d.H, bias.size(-1)}, q.dtype(), q.device()) : Tensor();
  dispatch(op, q,
           {.cpu_f32 =
                [&] {
                  Tensor scratch = Tensor::empty(p.shape(), DType::kF32);
                  cpu::attention_backward(q.data<float>(), k.data<float>(), v.data<float>(),
                                          p.data<float>(), dout.data<float>(), g.dq.data<float>(),
                                          g.dk.data<float>(), g.dv.data<float>(),
                                          scratch.data<float>(), d, scale, query_offset,
                                          score_bias<float>(op, bias, q, d, query_offset),
                                          bias.defined() ? dbias.data<float>() : nullptr);
                },
            .cpu_f64 =
                [&] {
                  ref::attention_backward(q.data<double>(), k.data<double>(), v.data<double>(),
                                          p.data<double>(), dout.data<double>(),
                                          g.dq.data<double>(), g.dk.data<double>(),
                                          g.dv.data<double>(), d, scale, query_offset,
                                          score_bias<double>(op, bias, q, d, query_offset),
                                          bias.defined() ? dbias.data<double>() : nullptr);
                },
            .cuda_f32 = ATTEND_ON_CUDA([&] {
              Tensor scratch = Tensor::empty(p.shape(), DType::kF32, q.device());
              cuda::attention_backward(
                  queue(q), q.data<float>(), k.data<float>(), v.data<float>(), p.data<float>(),
                  dout.data<float>(), g.dq.data<float>(), g.dk.data<float>(), g.dv.data<float>(),
                  scratch.data<float>(), d, static_cast<float>(scale), query_offset,
                  score_bias<float>(op, bias, q, d, query_offset),
                  bias.defined() ? dbias.data<float>() : nullptr);
            })});
  if (bias.defined()) g.dbias = shaped_bias_grad(dbias, bias);
  return g;
}

std::string attention_kernel() { return cpu::attention_kernel_description(); }

}  // namespace attend::ops
