// Layer norm and RMSNorm with a fused residual on CUDA: one block per row (mean and variance by
// block reductions, two passes as the reference); the backward's dgamma and dbeta are summed
// over a fixed partition of the rows (shapes.h) and then over the parts in order, so they do not
// depend on scheduling.
#include "kernels/cuda/launch.cuh"

namespace attend::cuda {
namespace {

__global__ void layer_norm_kernel(const float* x, const float* r, const float* gamma,
                                  const float* beta, float* y, float* s_out, float* mean,
                                  float* rstd, int64_t cols, float eps, bool rms) {
  const int64_t o = blockIdx.x * cols;
  // s = x + r, written to s_out first when there is a residual, then read from there.
  const float* s = x + o;
  if (r) {
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) s_out[o + c] = x[o + c] + r[o + c];
    __syncthreads();
    s = s_out + o;
  }
  float mu = 0;
  if (!rms) {
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) mu += s[c];
    mu = block_sum(mu) / static_cast<float>(cols);
  }
  float var = 0;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) var += (s[c] - mu) * (s[c] - mu);
  var = block_sum(var) / static_cast<float>(cols);
  const float rs = rsqrtf(var + eps);
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x)
    y[o + c] = (s[c] - mu) * rs * gamma[c] + (beta ? beta[c] : 0.f);
  if (threadIdx.x == 0) {
    mean[blockIdx.x] = mu;
    rstd[blockIdx.x] = rs;
  }
}

// ds = rstd (g - mean(g) - xhat mean(g xhat)), g = dy gamma (RMSNorm: no mean(g) term).
__global__ void layer_norm_dx_kernel(const float* dy, const float* s, const float* gamma,
                                     const float* mean, const float* rstd, float* ds, int64_t cols,
                                     bool rms) {
  const int64_t o = blockIdx.x * cols;
  const float mu = mean[blockIdx.x], rs = rstd[blockIdx.x];
  float mg = 0, mgx = 0;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    const float g = dy[o + c] * gamma[c];
    mg += g;
    mgx += g * (s[o + c] - mu) * rs;
  }
  mg = rms ? 0.f : block_sum(mg) / static_cast<float>(cols);
  mgx = block_sum(mgx) / static_cast<float>(cols);
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    const float xh = (s[o + c] - mu) * rs;
    ds[o + c] = rs * (dy[o + c] * gamma[c] - mg - xh * mgx);
  }
}

// Part blockIdx.y of the rows: partial dgamma (and dbeta) of column c in parts [p, c].
__global__ void layer_norm_dparams_parts(const float* dy, const float* s, const float* mean,
                                         const float* rstd, float* pg, float* pb, int64_t rows,
                                         int64_t cols, Partition p) {
  const int64_t c = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (c >= cols) return;
  float g = 0, b = 0;
  for (int64_t i = p.begin(blockIdx.y), e = p.end(blockIdx.y, rows); i < e; ++i) {
    const float d = dy[i * cols + c];
    g += d * (s[i * cols + c] - mean[i]) * rstd[i];
    b += d;
  }
  pg[blockIdx.y * cols + c] = g;
  if (pb) pb[blockIdx.y * cols + c] = b;
}

}  // namespace

void layer_norm(Queue q, const float* x, const float* r, const float* gamma, const float* beta,
                float* y, float* s_out, float* mean, float* rstd, int64_t rows, int64_t cols,
                double eps, bool rms) {
  if (rows == 0) return;
  use_device(q);
  layer_norm_kernel<<<static_cast<unsigned>(rows), row_threads(cols), 0, stream_of(q)>>>(
      x, r, gamma, beta, y, s_out, mean, rstd, cols, static_cast<float>(eps), rms);
  check_launch("layer_norm");
}

void layer_norm_backward(Queue q, const float* dy, const float* s, const float* gamma,
                         const float* mean, const float* rstd, float* dx, float* dgamma,
                         float* dbeta, float* scratch, int64_t rows, int64_t cols, bool rms) {
  if (cols == 0) return;
  use_device(q);
  if (rows > 0) {
    layer_norm_dx_kernel<<<static_cast<unsigned>(rows), row_threads(cols), 0, stream_of(q)>>>(
        dy, s, gamma, mean, rstd, dx, cols, rms);
    check_launch("layer_norm_backward");
  }
  const Partition p = partition(rows, kReduceParts);
  float* pg = scratch;
  float* pb = dbeta ? scratch + p.parts * cols : nullptr;
  const dim3 grid(static_cast<unsigned>(blocks_for(cols)), static_cast<unsigned>(p.parts));
  layer_norm_dparams_parts<<<grid, kThreads, 0, stream_of(q)>>>(dy, s, mean, rstd, pg, pb, rows,
                                                                cols, p);
  check_launch("layer_norm_backward (parameter parts)");
  sum_rows(q, pg, dgamma, p.parts, cols);  // the parts, in order
  if (dbeta) sum_rows(q, pb, dbeta, p.parts, cols);
}

}  // namespace attend::cuda
