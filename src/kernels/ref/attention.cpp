// Reference kernels, attention: Unfused attention (scores, masked softmax, weighted sum) and its
// backward. Written for clarity, accumulating in the element type T; declared in ref.h.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/ref/ref.h"

namespace attend::ref {

template <typename T>
void attention(const T* q, const T* k, const T* v, T* o, T* p, const AttnDims& d, const Mask& m,
               double scale, const ScoreBias<T>& bias) {
  const T sc = static_cast<T>(scale);
  for (int64_t bh = 0; bh < d.B * d.H; ++bh) {
    const T* qb = q + bh * d.Tq * d.Dh;
    const T* kb = k + bh * d.Tk * d.Dh;
    T* pb = p + bh * d.Tq * d.Tk;
    for (int64_t i = 0; i < d.Tq; ++i)
      for (int64_t j = 0; j < d.Tk; ++j) {
        T acc = 0;
        for (int64_t c = 0; c < d.Dh; ++c) acc += qb[i * d.Dh + c] * kb[j * d.Dh + c];
        pb[i * d.Tk + j] = acc * sc;
      }
  }
  if (bias.data) kernels::add_score_bias(p, d, m.query_offset, bias);
  softmax(p, p, d, m);  // in place: each row is read fully before it is written
  for (int64_t bh = 0; bh < d.B * d.H; ++bh)
    gemm<T>(false, false, d.Tq, d.Dh, d.Tk, T(1), p + bh * d.Tq * d.Tk, d.Tk, v + bh * d.Tk * d.Dh,
            d.Dh, T(0), o + bh * d.Tq * d.Dh, d.Dh);
}

template <typename T>
void attention_backward(const T* q, const T* k, const T* v, const T* p, const T* dout, T* dq, T* dk,
                        T* dv, const AttnDims& d, double scale, int64_t query_offset,
                        const ScoreBias<T>& bias, T* dbias) {
  std::vector<T> dp(static_cast<size_t>(d.Tq * d.Tk)), ds(dp.size());
  if (dbias)
    for (int64_t x = 0; x < d.B * d.H * bias.span; ++x) dbias[x] = T(0);
  for (int64_t bh = 0; bh < d.B * d.H; ++bh) {
    const T* pb = p + bh * d.Tq * d.Tk;
    const T* dob = dout + bh * d.Tq * d.Dh;
    // dv = p^T do;  dp = do v^T;  ds = softmax_backward(p, dp) * scale;  dq = ds k;  dk = ds^T q
    gemm<T>(true, false, d.Tk, d.Dh, d.Tq, T(1), pb, d.Tk, dob, d.Dh, T(0), dv + bh * d.Tk * d.Dh,
            d.Dh);
    gemm<T>(false, true, d.Tq, d.Tk, d.Dh, T(1), dob, d.Dh, v + bh * d.Tk * d.Dh, d.Dh, T(0),
            dp.data(), d.Tk);
    softmax_backward(pb, dp.data(), ds.data(), d.Tq, d.Tk);
    if (dbias)  // the bias gradient of this (b, h): ds, by relative position
      kernels::add_score_bias_grad(ds.data(), bh, bh + 1, d, query_offset, bias, dbias);
    const T sc = static_cast<T>(scale);
    gemm<T>(false, false, d.Tq, d.Dh, d.Tk, sc, ds.data(), d.Tk, k + bh * d.Tk * d.Dh, d.Dh, T(0),
            dq + bh * d.Tq * d.Dh, d.Dh);
    gemm<T>(true, false, d.Tk, d.Dh, d.Tq, sc, ds.data(), d.Tk, q + bh * d.Tq * d.Dh, d.Dh, T(0),
            dk + bh * d.Tk * d.Dh, d.Dh);
  }
}

#define ATTEND_REF_INSTANTIATE(T)                                                                \
  template void attention<T>(const T*, const T*, const T*, T*, T*, const AttnDims&, const Mask&, \
                             double, const ScoreBias<T>&);                                       \
  template void attention_backward<T>(const T*, const T*, const T*, const T*, const T*, T*, T*,  \
                                      T*, const AttnDims&, double, int64_t, const ScoreBias<T>&, \
                                      T*);

ATTEND_REF_INSTANTIATE(float)
ATTEND_REF_INSTANTIATE(double)

}  // namespace attend::ref
