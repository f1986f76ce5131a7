// Size structs and masks shared by the kernels of every backend. Kernels never see Tensor:
// they take raw pointers of contiguous row-major buffers and these plain structs.
#pragma once
#include <cstdint>

namespace attend::kernels {

/// Attention problem sizes: q [B, H, Tq, Dh], k and v [B, H, Tk, Dh], scores [B, H, Tq, Tk].
struct AttnDims {
  int64_t B = 1, H = 1, Tq = 1, Tk = 1, Dh = 1;
};

/// Which scores are masked out (probability 0).
///  key_lengths: per batch entry b, keys j >= key_lengths[b] are padding (null: none).
///  causal: query i sees keys j <= i + causal_offset (offset = Tk - Tq when decoding with a cache).
/// A row whose keys are all masked gets all-zero probabilities (never NaN).
struct Mask {
  const int32_t* key_lengths = nullptr;
  bool causal = false;
  int64_t causal_offset = 0;
  /// Number of visible keys for (b, i): keys [0, limit) are candidates before padding.
  int64_t visible(int64_t b, int64_t i, int64_t Tk) const {
    int64_t n = Tk;
    if (key_lengths) n = key_lengths[b] < n ? key_lengths[b] : n;
    if (causal) {
      const int64_t c = i + causal_offset + 1;
      n = c < n ? c : n;
    }
    return n < 0 ? 0 : n;
  }
};

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

}  // namespace attend::kernels
