// Unfused (reference-structure) attention on the CPU: S = scale * Q K^T by batched GEMM, masked
// softmax, O = P V. Keeps P [B, H, Tq, Tk] for backward. The fused O(n)-memory kernel replaces it
// as the default later; this one stays as the fast oracle.
#include "kernels/cpu/cpu.h"

namespace attend::cpu {

void attention(const float* q, const float* k, const float* v, float* o, float* p,
               const AttnDims& d, const Mask& m, double scale,
               const kernels::ScoreBias<float>& bias) {
  const int64_t bh = d.B * d.H;
  sgemm_batched(false, true, d.Tq, d.Tk, d.Dh, static_cast<float>(scale), q, d.Dh, d.Tq * d.Dh, k,
                d.Dh, d.Tk * d.Dh, 0.f, p, d.Tk, d.Tq * d.Tk, bh);
  if (bias.data) kernels::add_score_bias(p, d, m.query_offset, bias);
  softmax(p, p, d, m);
  sgemm_batched(false, false, d.Tq, d.Dh, d.Tk, 1.f, p, d.Tk, d.Tq * d.Tk, v, d.Dh, d.Tk * d.Dh,
                0.f, o, d.Dh, d.Tq * d.Dh, bh);
}

void attention_backward(const float* q, const float* k, const float* v, const float* p,
                        const float* dout, float* dq, float* dk, float* dv, float* dp,
                        const AttnDims& d, double scale, int64_t query_offset,
                        const kernels::ScoreBias<float>& bias, float* dbias) {
  const int64_t bh = d.B * d.H;
  const float sc = static_cast<float>(scale);
  // dv = p^T do;  dp = do v^T;  ds = p * (dp - rowsum(dp * p));  dq = scale ds k;  dk = scale ds^T q
  sgemm_batched(true, false, d.Tk, d.Dh, d.Tq, 1.f, p, d.Tk, d.Tq * d.Tk, dout, d.Dh,
                d.Tq * d.Dh, 0.f, dv, d.Dh, d.Tk * d.Dh, bh);
  sgemm_batched(false, true, d.Tq, d.Tk, d.Dh, 1.f, dout, d.Dh, d.Tq * d.Dh, v, d.Dh,
                d.Tk * d.Dh, 0.f, dp, d.Tk, d.Tq * d.Tk, bh);
  softmax_backward(p, dp, dp, bh * d.Tq, d.Tk);
  if (dbias) {
    std::fill(dbias, dbias + bh * bias.span, 0.f);
    kernels::add_score_bias_grad(dp, 0, bh, d, query_offset, bias, dbias);
  }
  sgemm_batched(false, false, d.Tq, d.Dh, d.Tk, sc, dp, d.Tk, d.Tq * d.Tk, k, d.Dh, d.Tk * d.Dh,
                0.f, dq, d.Dh, d.Tq * d.Dh, bh);
  sgemm_batched(true, false, d.Tk, d.Dh, d.Tq, sc, dp, d.Tk, d.Tq * d.Tk, q, d.Dh, d.Tq * d.Dh,
                0.f, dk, d.Dh, d.Tk * d.Dh, bh);
}

}  // namespace attend::cpu
