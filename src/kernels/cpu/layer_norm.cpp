// Layer norm and RMSNorm (optionally fused with the residual add) forward and backward, fp32.
// Statistics are accumulated in float with a two-pass mean/variance (no catastrophic
// cancellation); dgamma/dbeta use per-thread partial sums reduced at the end.
#include <cmath>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/cpu/cpu.h"
#include "kernels/cpu/vec_math.h"

namespace attend::cpu {
namespace {

ATTEND_MULTIVERSION void ln_row(const float* x, const float* r, const float* gamma,
                                const float* beta, float* y, float* s_out, float* mean, float* rstd,
                                int64_t cols, float eps, bool rms) {
  // s goes to s_out when kept, else through y as scratch.
  float* s = s_out ? s_out : y;
  float mu = 0.f;
  if (r) {
    for (int64_t c = 0; c < cols; ++c) {
      s[c] = x[c] + r[c];
      mu += s[c];
    }
  } else {
    for (int64_t c = 0; c < cols; ++c) {
      s[c] = x[c];
      mu += s[c];
    }
  }
  mu = rms ? 0.f : mu / static_cast<float>(cols);
  float var = 0.f;
  for (int64_t c = 0; c < cols; ++c) var += (s[c] - mu) * (s[c] - mu);
  var /= static_cast<float>(cols);
  const float rs = 1.f / std::sqrt(var + eps);
  if (beta)
    for (int64_t c = 0; c < cols; ++c) y[c] = (s[c] - mu) * rs * gamma[c] + beta[c];
  else
    for (int64_t c = 0; c < cols; ++c) y[c] = (s[c] - mu) * rs * gamma[c];
  *mean = mu;
  *rstd = rs;
}

ATTEND_MULTIVERSION void ln_backward_rows(const float* dy, const float* s, const float* gamma,
                                          const float* mean, const float* rstd, float* ds,
                                          float* dgamma, float* dbeta, int64_t rows, int64_t cols,
                                          bool rms) {
  for (int64_t i = 0; i < rows; ++i) {
    const float* dyr = dy + i * cols;
    const float* sr = s + i * cols;
    const float mu = mean[i], rs = rstd[i];
    float mg = 0.f, mgx = 0.f;
    for (int64_t c = 0; c < cols; ++c) {
      const float xh = (sr[c] - mu) * rs;
      const float g = dyr[c] * gamma[c];
      mg += g;
      mgx += g * xh;
      dgamma[c] += dyr[c] * xh;
      dbeta[c] += dyr[c];  // dbeta: a scratch row when the norm has no beta
    }
    mg = rms ? 0.f : mg / static_cast<float>(cols);
    mgx /= static_cast<float>(cols);
    float* dsr = ds + i * cols;
    for (int64_t c = 0; c < cols; ++c) {
      const float xh = (sr[c] - mu) * rs;
      dsr[c] = rs * (dyr[c] * gamma[c] - mg - xh * mgx);
    }
  }
}

}  // namespace

void layer_norm(const float* x, const float* r, const float* gamma, const float* beta, float* y,
                float* s_out, float* mean, float* rstd, int64_t rows, int64_t cols, double eps,
                bool rms) {
  parallel_for(rows, std::max<int64_t>(1, 4096 / std::max<int64_t>(cols, 1)),
               [&](int64_t b, int64_t e) {
                 for (int64_t i = b; i < e; ++i)
                   ln_row(x + i * cols, r ? r + i * cols : nullptr, gamma, beta, y + i * cols,
                          s_out ? s_out + i * cols : nullptr, mean + i, rstd + i, cols,
                          static_cast<float>(eps), rms);
               });
}

void layer_norm_backward(const float* dy, const float* s, const float* gamma, const float* mean,
                         const float* rstd, float* ds, float* dgamma, float* dbeta, int64_t rows,
                         int64_t cols, bool rms) {
  const int64_t chunks = std::min<int64_t>(num_threads(), std::max<int64_t>(1, rows / 16));
  std::vector<float> partial(static_cast<size_t>(chunks * 2 * cols), 0.f);
  parallel_for(chunks, 1, [&](int64_t cb, int64_t ce) {
    for (int64_t k = cb; k < ce; ++k) {
      const int64_t r0 = rows * k / chunks, r1 = rows * (k + 1) / chunks;
      float* pg = partial.data() + k * 2 * cols;
      ln_backward_rows(dy + r0 * cols, s + r0 * cols, gamma, mean + r0, rstd + r0, ds + r0 * cols,
                       pg, pg + cols, r1 - r0, cols, rms);
    }
  });
  for (int64_t c = 0; c < cols; ++c) {
    dgamma[c] = 0.f;
    if (dbeta) dbeta[c] = 0.f;
  }
  for (int64_t k = 0; k < chunks; ++k)
    for (int64_t c = 0; c < cols; ++c) {
      dgamma[c] += partial[k * 2 * cols + c];
      if (dbeta) dbeta[c] += partial[k * 2 * cols + cols + c];
    }
}

}  // namespace attend::cpu
