// Size structs and masks shared by the kernels of every backend. Kernels never see Tensor:
// they take raw pointers of contiguous row-major buffers and these plain structs.
#pragma once
#include <cmath>
#include <cstdint>

#include "core/host_device.h"

namespace attend::kernels {

/// Attention problem sizes: q [B, H, Tq, Dh], k and v [B, H, Tk, Dh], scores [B, H, Tq, Tk].
/// With kv_rows (forward only), k and v are [Bkv, H, Tk, Dh] and query batch row b attends to
/// their row kv_rows[b] (beams of one sentence sharing its encoder keys/values).
struct AttnDims {
  int64_t B = 1, H = 1, Tq = 1, Tk = 1, Dh = 1;
  const int32_t* kv_rows = nullptr;
  int64_t Bkv = 0;  // batch of k and v when kv_rows is set

  /// The (batch, head) of k and v that query (batch, head) bh = b * H + h reads.
  ATTEND_HD int64_t kv_head(int64_t bh) const {
    return (kv_rows ? kv_rows[bh / H] : bh / H) * H + bh % H;
  }
  ATTEND_HD int64_t kv_batch() const { return kv_rows ? Bkv : B; }
};

/// Which scores are masked out (probability 0). Query i sits at key position p = i + query_offset
/// (query_offset = Tk - Tq when decoding one step against a cache of Tk keys).
///  key_lengths: per batch entry b, keys j >= key_lengths[b] are padding (null: none).
///  causal: query at p sees keys j <= p.
///  window >= 0: local attention, p sees keys with |p - j| <= window (with causal: p - window <= j
///    <= p); the first global_tokens positions attend to every key and are seen by every query.
///    window < 0: full attention (global_tokens unused).
/// A row whose keys are all masked gets all-zero probabilities (never NaN).
struct Mask {
  const int32_t* key_lengths = nullptr;
  bool causal = false;
  int64_t query_offset = 0;
  int64_t window = -1;
  int64_t global_tokens = 0;

  /// End of the candidate key range for (b, i) from padding and causality: keys [0, limit).
  ATTEND_HD int64_t limit(int64_t b, int64_t i, int64_t Tk) const {
    int64_t n = Tk;
    if (key_lengths) n = key_lengths[b] < n ? key_lengths[b] : n;
    if (causal) {
      const int64_t c = i + query_offset + 1;
      n = c < n ? c : n;
    }
    return n < 0 ? 0 : n;
  }
  /// True when the visible keys of every row form a prefix [0, limit) (no window).
  ATTEND_HD bool prefix_only() const { return window < 0; }
  ATTEND_HD bool allowed(int64_t b, int64_t i, int64_t j, int64_t Tk) const {
    if (j >= limit(b, i, Tk)) return false;
    if (window < 0) return true;
    const int64_t p = i + query_offset;
    if (p < global_tokens || j < global_tokens) return true;
    return p - j <= window && j - p <= window;
  }
};

/// An additive bias on the scores by relative position (T5's relative position bias), after
/// the scaling and before the softmax: query i (at key position p = i + query_offset) and key j
/// get data[b * batch_stride + h * span + (j - p) + origin]. With P = Tq + query_offset the
/// offsets j - p run over [-(P - 1), Tk - 1], so origin = P - 1 and span = P + Tk - 1;
/// batch_stride 0 shares one [H, span] bias over the batch, span * H gives every batch entry
/// its own (decoding rows at different positions). data null: no bias.
template <typename T>
struct ScoreBias {
  const T* data = nullptr;
  int64_t batch_stride = 0;
  int64_t span = 0;
  int64_t origin = 0;
  /// The bias of (b, h) for the query at key position p, indexed by key j.
  ATTEND_HD const T* row(int64_t b, int64_t h, int64_t p) const {
    return data + b * batch_stride + h * span + origin - p;
  }
  /// The same row of a gradient laid out [B * H, span] (every batch entry its own), for
  /// bh = b * H + h.
  ATTEND_HD T* grad_row(T* dbias, int64_t bh, int64_t p) const {
    return dbias + bh * span + origin - p;
  }
};

/// scores [B, H, Tq, Tk] += bias (the unfused attentions; query i at key position
/// i + query_offset).
template <typename T>
void add_score_bias(T* scores, const AttnDims& d, int64_t query_offset, const ScoreBias<T>& bias) {
  for (int64_t bh = 0; bh < d.B * d.H; ++bh)
    for (int64_t i = 0; i < d.Tq; ++i) {
      const T* row = bias.row(bh / d.H, bh % d.H, i + query_offset);
      T* s = scores + (bh * d.Tq + i) * d.Tk;
      for (int64_t j = 0; j < d.Tk; ++j) s[j] += row[j];
    }
}
/// Adds the score gradient of heads [bh0, bh1), ds [bh1 - bh0, Tq, Tk], into the bias gradient
/// dbias [B, H, span] (the unfused attentions' backward; zero dbias first).
template <typename T>
void add_score_bias_grad(const T* ds, int64_t bh0, int64_t bh1, const AttnDims& d,
                         int64_t query_offset, const ScoreBias<T>& bias, T* dbias) {
  for (int64_t bh = bh0; bh < bh1; ++bh)
    for (int64_t i = 0; i < d.Tq; ++i) {
      T* row = bias.grad_row(dbias, bh, i + query_offset);
      const T* g = ds + ((bh - bh0) * d.Tq + i) * d.Tk;
      for (int64_t j = 0; j < d.Tk; ++j) row[j] += g[j];
    }
}

/// Label-smoothed cross-entropy settings. Target distribution for a row with target t:
/// q = (1 - eps) * onehot(t) + eps / V (uniform over all V classes, as PyTorch does).
/// Rows whose target equals ignore_index contribute nothing.
struct CrossEntropyConfig {
  double label_smoothing = 0.0;
  int32_t ignore_index = -1;
};

struct AdamConfig {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
};

/// One f32 Adam(W) step's constants, bias corrections folded in (computed in double), and the
/// update of one element: the CPU and CUDA kernels both apply this.
struct AdamStep {
  float b1, b2, step_size, inv_sqrt_bc2, eps, lr_wd;
  static AdamStep make(const AdamConfig& c, int64_t step);
  /// lr * mhat / (sqrt(vhat) + eps) + lr * wd * p, with mhat = m / bc1 and vhat = v / bc2.
  ATTEND_HD void apply(float& p, float g, float& m, float& v) const {
    m = b1 * m + (1.f - b1) * g;
    v = b2 * v + (1.f - b2) * g * g;
    p -= step_size * m / (sqrtf(v) * inv_sqrt_bc2 + eps) + lr_wd * p;
  }
};
inline AdamStep AdamStep::make(const AdamConfig& c, int64_t step) {
  const double bc1 = 1.0 - std::pow(c.beta1, static_cast<double>(step));
  const double bc2 = 1.0 - std::pow(c.beta2, static_cast<double>(step));
  return {static_cast<float>(c.beta1),    static_cast<float>(c.beta2),
          static_cast<float>(c.lr / bc1), static_cast<float>(1.0 / std::sqrt(bc2)),
          static_cast<float>(c.eps),      static_cast<float>(c.lr * c.weight_decay)};
}

}  // namespace attend::kernels
