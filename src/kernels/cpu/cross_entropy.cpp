// Fused label-smoothed softmax cross-entropy over the vocabulary, forward and backward.
// Forward keeps only the per-row log-sum-exp; backward recomputes softmax from it.
#include <algorithm>
#include <cmath>
#include <limits>

#include "core/thread_pool.h"
#include "kernels/cpu/cpu.h"
#include "kernels/cpu/vec_math.h"

namespace attend::cpu {
namespace {

ATTEND_MULTIVERSION void ce_row(const float* x, int64_t V, float* lse_out, float* sum_x) {
  const float mx = row_max(x, V);
  float s = 0.f, sx = 0.f;
  for (int64_t j = 0; j < V; ++j) {
    s += fast_exp(x[j] - mx);
    sx += x[j];
  }
  *lse_out = mx + std::log(s);
  *sum_x = sx;
}

ATTEND_MULTIVERSION void ce_backward_row(const float* x, float lse, float* g, int64_t V,
                                         float smooth, float scale) {
  for (int64_t j = 0; j < V; ++j) g[j] = scale * (fast_exp(x[j] - lse) - smooth);
}

}  // namespace

void cross_entropy(const float* logits, const int32_t* targets, float* loss, float* lse,
                   int64_t rows, int64_t V, const CrossEntropyConfig& c) {
  const float eps = static_cast<float>(c.label_smoothing);
  parallel_for(rows, std::max<int64_t>(1, 8192 / V), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      float sx;
      ce_row(logits + r * V, V, lse + r, &sx);
      loss[r] = targets[r] == c.ignore_index
                    ? 0.f
                    : lse[r] - (1.f - eps) * logits[r * V + targets[r]] -
                          eps / static_cast<float>(V) * sx;
    }
  });
}

void cross_entropy_backward(const float* logits, const int32_t* targets, const float* lse,
                            float* dlogits, int64_t rows, int64_t V, const CrossEntropyConfig& c,
                            float grad_scale) {
  const float eps = static_cast<float>(c.label_smoothing);
  const float smooth = eps / static_cast<float>(V);
  parallel_for(rows, std::max<int64_t>(1, 8192 / V), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      float* g = dlogits + r * V;
      if (targets[r] == c.ignore_index) {
        std::fill(g, g + V, 0.f);
        continue;
      }
      ce_backward_row(logits + r * V, lse[r], g, V, smooth, grad_scale);
      g[targets[r]] -= grad_scale * (1.f - eps);
    }
  });
}

}  // namespace attend::cpu
