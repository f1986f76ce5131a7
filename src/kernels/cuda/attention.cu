// Attention on CUDA, f32: the fused (flash-style) forward and backward, which never store the
// Tq x Tk scores, and the unfused reference (cuBLAS products around the masked softmax).
//
// Fused kernels (shapes in shapes.h): a block of kAttnWarps warps owns kAttnWarps rows of one
// (batch, head), a warp per row; the other side is staged in shared memory kAttnTile rows at a
// time, one row per lane. Each lane computes its pair's score (a dot product over the head
// width), the warp combines them with shuffles, and each lane keeps Dh / 32 columns of the
// row's accumulator. Scores, masks and the bias are those of the CPU kernels (kernels::Mask,
// kernels::ScoreBias, the same code). No atomics: every output element has one writer, and
// sums run in a fixed order, so results do not depend on scheduling.
//   forward  (query rows)  online softmax over key tiles -> o, lse
//   dq       (query rows)  P = exp(s - lse), dS = P (dO.v - D), dq = scale sum_j dS k_j
//   dk, dv   (key rows)    over query tiles: dv = sum_i P dO_i, dk = scale sum_i dS q_i
//   dbias    (one thread per (batch, head, offset)) sums dS along its diagonal
// with D_i = dO_i . o_i computed first. A first version for correctness on the device: plain
// f32 arithmetic on CUDA cores, no tensor cores; Dh <= kAttnMaxDh.
#include "kernels/cuda/launch.cuh"

namespace attend::cuda {
namespace {

using Bias = kernels::ScoreBias<float>;
constexpr int kPerLane = kAttnMaxDh / 32;
constexpr unsigned kFull = 0xffffffffu;

/// Stages rows [r0, r0 + kAttnTile) of the [rows, Dh] matrices a and b into shared tiles (zeros
/// past `rows`), with every thread of the block.
__device__ void stage_tiles(const float* a, const float* b, float* as, float* bs, int64_t r0,
                            int64_t rows, int64_t Dh, int64_t ld) {
  for (int64_t e = threadIdx.x; e < kAttnTile * Dh; e += blockDim.x) {
    const int64_t r = e / Dh, c = e % Dh, row = r0 + r;
    as[r * ld + c] = row < rows ? a[row * Dh + c] : 0.f;
    bs[r * ld + c] = row < rows ? b[row * Dh + c] : 0.f;
  }
}

__device__ float dot(const float* x, const float* y, int64_t n) {
  float s = 0;
  for (int64_t c = 0; c < n; ++c) s += x[c] * y[c];
  return s;
}

/// acc[t] (column lane + 32 t) += sum over the tile's rows r of w_r tile[r, column], w_r being
/// lane r's value of w.
__device__ void accumulate_rows(float (&acc)[kPerLane], float w, const float* tile, int64_t Dh,
                                int64_t ld) {
  const int lane = threadIdx.x & 31;
  for (int r = 0; r < kAttnTile; ++r) {
    const float wr = __shfl_sync(kFull, w, r);
    if (wr == 0.f) continue;  // the same for the whole warp
#pragma unroll
    for (int t = 0; t < kPerLane; ++t) {
      const int64_t c = lane + 32 * t;
      if (c < Dh) acc[t] += wr * tile[r * ld + c];
    }
  }
}

/// The warp's row (Dh values at src; zeros when the row does not exist) into shared memory.
__device__ void load_row(float* dst, const float* src, int64_t Dh, bool live) {
  for (int64_t c = threadIdx.x & 31; c < Dh; c += 32) dst[c] = live ? src[c] : 0.f;
}

/// out[column] = factor * acc (the lane's columns lane + 32 t).
__device__ void store_row(float* out, const float (&acc)[kPerLane], float factor, int64_t Dh) {
  const int lane = threadIdx.x & 31;
#pragma unroll
  for (int t = 0; t < kPerLane; ++t) {
    const int64_t c = lane + 32 * t;
    if (c < Dh) out[c] = factor * acc[t];
  }
}

/// The score of query i and key j of (b, h): scale q.k + bias, or -inf when masked.
__device__ float score(const float* qrow, const float* krow, int64_t b, int64_t h, int64_t i,
                       int64_t j, const AttnDims& d, const Mask& m, float scale, const Bias& bias) {
  if (j >= d.Tk || i >= d.Tq || !m.allowed(b, i, j, d.Tk)) return -INFINITY;
  const float s = scale * dot(qrow, krow, d.Dh);
  return bias.data ? s + bias.row(b, h, i + m.query_offset)[j] : s;
}

/// Keys [0, end) hold every visible key of queries [i0, i1): with a prefix mask, the limit of
/// the last query (limits grow with the query); otherwise every key.
__device__ int64_t key_end(const Mask& m, int64_t b, int64_t i1, const AttnDims& d) {
  return m.prefix_only() ? m.limit(b, i1 - 1, d.Tk) : d.Tk;
}

/// The rows a block of the row kernels owns: kAttnWarps consecutive rows (queries, or keys in
/// the dk/dv pass) of one (batch, head), a warp each; `row` is this warp's, [first, end) the
/// block's rows that exist.
struct RowBlock {
  int warp, lane;
  int64_t bh, b, h, first, row, end;
  __device__ RowBlock(const AttnDims& d, int64_t rows)
      : warp(static_cast<int>(threadIdx.x >> 5)),
        lane(static_cast<int>(threadIdx.x & 31)),
        bh(blockIdx.x),
        b(bh / d.H),
        h(bh % d.H),
        first(blockIdx.y * int64_t{kAttnWarps}),
        row(first + warp),
        end(first + kAttnWarps < rows ? first + kAttnWarps : rows) {}
};

__global__ void flash_forward(const float* q, const float* k, const float* v, float* o, float* lse,
                              AttnDims d, Mask m, float scale, Bias bias) {
  extern __shared__ float smem[];
  const int64_t ld = attn_smem_stride(d.Dh);
  float *ks = smem, *vs = ks + kAttnTile * ld, *qs = vs + kAttnTile * ld;
  const RowBlock blk(d, d.Tq);
  const int warp = blk.warp, lane = blk.lane;
  const int64_t bh = blk.bh, b = blk.b, h = blk.h, i = blk.row, i1 = blk.end;
  const float* kb = k + d.kv_head(bh) * d.Tk * d.Dh;
  const float* vb = v + d.kv_head(bh) * d.Tk * d.Dh;
  float* qw = qs + warp * ld;
  load_row(qw, q + (bh * d.Tq + (i < d.Tq ? i : 0)) * d.Dh, d.Dh, i < d.Tq);
  float run_max = -INFINITY, run_sum = 0.f, acc[kPerLane] = {};
  const int64_t end = key_end(m, b, i1, d);
  for (int64_t j0 = 0; j0 < end; j0 += kAttnTile) {
    __syncthreads();
    stage_tiles(kb, vb, ks, vs, j0, d.Tk, d.Dh, ld);
    __syncthreads();
    const float s = score(qw, ks + lane * ld, b, h, i, j0 + lane, d, m, scale, bias);
    const float tile_max = warp_max(s);
    if (tile_max == -INFINITY) continue;  // nothing visible in this tile for this row
    const float new_max = fmaxf(run_max, tile_max);
    const float rescale = expf(run_max - new_max);  // 0 while run_max is -inf
    const float p = s == -INFINITY ? 0.f : expf(s - new_max);
    run_sum = run_sum * rescale + warp_sum(p);
#pragma unroll
    for (int t = 0; t < kPerLane; ++t) acc[t] *= rescale;
    accumulate_rows(acc, p, vs, d.Dh, ld);
    run_max = new_max;
  }
  if (i >= d.Tq) return;
  const float inv = run_sum > 0.f ? 1.f / run_sum : 0.f;  // no visible key: output 0
  store_row(o + (bh * d.Tq + i) * d.Dh, acc, inv, d.Dh);
  if (lane == 0) lse[bh * d.Tq + i] = run_sum > 0.f ? run_max + logf(run_sum) : -INFINITY;
}

/// D = dO . o per query row, one warp per row.
__global__ void row_dots(const float* dout, const float* o, float* D, int64_t rows, int64_t Dh) {
  const int64_t r = blockIdx.x * int64_t{kAttnWarps} + (threadIdx.x >> 5);
  if (r >= rows) return;
  float s = 0;
  for (int64_t c = threadIdx.x & 31; c < Dh; c += 32) s += dout[r * Dh + c] * o[r * Dh + c];
  s = warp_sum(s);
  if ((threadIdx.x & 31) == 0) D[r] = s;
}

/// P and dS of the pair (i, j), given its score s, the row's lse and D, and dO_i . v_j.
__device__ void probability_and_grad(float s, float row_lse, float row_D, float dp, float* p,
                                     float* ds) {
  *p = s == -INFINITY ? 0.f : expf(s - row_lse);
  *ds = *p * (dp - row_D);
}

__global__ void flash_backward_dq(const float* q, const float* k, const float* v, const float* lse,
                                  const float* D, const float* dout, float* dq, AttnDims d, Mask m,
                                  float scale, Bias bias) {
  extern __shared__ float smem[];
  const int64_t ld = attn_smem_stride(d.Dh);
  float *ks = smem, *vs = ks + kAttnTile * ld, *rows = vs + kAttnTile * ld;
  const RowBlock blk(d, d.Tq);
  const int warp = blk.warp, lane = blk.lane;
  const int64_t bh = blk.bh, b = blk.b, h = blk.h, i = blk.row, i1 = blk.end;
  const bool live = i < d.Tq;
  // The warp's query row and its dO row share one staging row each: q in `rows`, dO read from
  // global memory per lane below (dO . v needs the whole row; kept in registers by columns).
  float* qw = rows + warp * ld;
  load_row(qw, q + (bh * d.Tq + (live ? i : 0)) * d.Dh, d.Dh, live);
  const float* dorow = dout + (bh * d.Tq + (live ? i : 0)) * d.Dh;
  const float row_lse = live ? lse[bh * d.Tq + i] : -INFINITY;
  const float row_D = live ? D[bh * d.Tq + i] : 0.f;
  const float* kb = k + bh * d.Tk * d.Dh;
  const float* vb = v + bh * d.Tk * d.Dh;
  float acc[kPerLane] = {};
  const int64_t end = key_end(m, b, i1, d);
  for (int64_t j0 = 0; j0 < end; j0 += kAttnTile) {
    __syncthreads();
    stage_tiles(kb, vb, ks, vs, j0, d.Tk, d.Dh, ld);
    __syncthreads();
    const float s = row_lse == -INFINITY
                        ? -INFINITY
                        : score(qw, ks + lane * ld, b, h, i, j0 + lane, d, m, scale, bias);
    float p = 0.f, ds = 0.f;
    if (s != -INFINITY)
      probability_and_grad(s, row_lse, row_D, dot(dorow, vs + lane * ld, d.Dh), &p, &ds);
    accumulate_rows(acc, ds, ks, d.Dh, ld);
  }
  if (live) store_row(dq + (bh * d.Tq + i) * d.Dh, acc, scale, d.Dh);
}

__global__ void flash_backward_dkdv(const float* q, const float* k, const float* v,
                                    const float* lse, const float* D, const float* dout, float* dk,
                                    float* dv, AttnDims d, Mask m, float scale, Bias bias) {
  extern __shared__ float smem[];
  const int64_t ld = attn_smem_stride(d.Dh);
  float *qs = smem, *dos = qs + kAttnTile * ld, *rows = dos + kAttnTile * ld;
  const RowBlock blk(d, d.Tk);
  const int warp = blk.warp, lane = blk.lane;
  const int64_t bh = blk.bh, b = blk.b, h = blk.h, j0 = blk.first, j = blk.row;
  const bool live = j < d.Tk;
  float* kw = rows + warp * ld;
  load_row(kw, k + (bh * d.Tk + (live ? j : 0)) * d.Dh, d.Dh, live);
  const float* vrow = v + (bh * d.Tk + (live ? j : 0)) * d.Dh;
  const float* qb = q + bh * d.Tq * d.Dh;
  const float* dob = dout + bh * d.Tq * d.Dh;
  float acc_k[kPerLane] = {}, acc_v[kPerLane] = {};
  const int64_t first = m.causal ? attn_causal_first_query_tile(j0, m.query_offset) : 0;
  for (int64_t i0 = first; i0 < d.Tq; i0 += kAttnTile) {
    __syncthreads();
    stage_tiles(qb, dob, qs, dos, i0, d.Tq, d.Dh, ld);
    __syncthreads();
    const int64_t i = i0 + lane;
    const float row_lse = i < d.Tq ? lse[bh * d.Tq + i] : -INFINITY;
    const float s = !live || row_lse == -INFINITY
                        ? -INFINITY
                        : score(qs + lane * ld, kw, b, h, i, j, d, m, scale, bias);
    float p = 0.f, ds = 0.f;
    if (s != -INFINITY)
      probability_and_grad(s, row_lse, D[bh * d.Tq + i], dot(dos + lane * ld, vrow, d.Dh), &p, &ds);
    accumulate_rows(acc_v, p, dos, d.Dh, ld);
    accumulate_rows(acc_k, ds, qs, d.Dh, ld);
  }
  if (!live) return;
  store_row(dk + (bh * d.Tk + j) * d.Dh, acc_k, scale, d.Dh);
  store_row(dv + (bh * d.Tk + j) * d.Dh, acc_v, 1.f, d.Dh);
}

/// dbias[bh, x] = sum of dS over the pairs (i, j) with j - (i + query_offset) + origin = x,
/// recomputed pair by pair in query order; one thread per (bh, x).
__global__ void flash_backward_dbias(const float* q, const float* k, const float* v,
                                     const float* lse, const float* D, const float* dout,
                                     float* dbias, AttnDims d, Mask m, float scale, Bias bias) {
  const int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (e >= d.B * d.H * bias.span) return;
  const int64_t bh = e / bias.span, x = e % bias.span, b = bh / d.H, h = bh % d.H;
  float acc = 0;
  for (int64_t i = 0; i < d.Tq; ++i) {
    const int64_t j = x - bias.origin + i + m.query_offset;
    if (j < 0 || j >= d.Tk) continue;
    const float row_lse = lse[bh * d.Tq + i];
    if (row_lse == -INFINITY) continue;
    const float* qrow = q + (bh * d.Tq + i) * d.Dh;
    const float s = score(qrow, k + (bh * d.Tk + j) * d.Dh, b, h, i, j, d, m, scale, bias);
    if (s == -INFINITY) continue;
    float p, ds;
    probability_and_grad(s, row_lse, D[bh * d.Tq + i],
                         dot(dout + (bh * d.Tq + i) * d.Dh, v + (bh * d.Tk + j) * d.Dh, d.Dh), &p,
                         &ds);
    acc += ds;
  }
  dbias[e] = acc;
}

void check_head_width(int64_t Dh) {
  ATTEND_CHECK(Dh >= 1 && Dh <= kAttnMaxDh,
               "attention on CUDA: head width {} is outside the fused kernel's 1..{}", Dh,
               kAttnMaxDh);
}

size_t smem_bytes(int64_t Dh) { return sizeof(float) * attn_smem_floats(Dh); }

/// Launch grid of the row kernels: (batch x heads, row blocks).
dim3 row_grid(int64_t bh, int64_t rows) {
  return dim3(static_cast<unsigned>(bh), static_cast<unsigned>(attn_row_blocks(rows)));
}

// ------------------------------------------------------------------ unfused reference

__global__ void add_bias_kernel(float* scores, AttnDims d, int64_t query_offset, Bias bias) {
  ATTEND_GRID_LOOP(e, d.B * d.H * d.Tq * d.Tk) {
    const int64_t j = e % d.Tk, row = e / d.Tk, i = row % d.Tq, bh = row / d.Tq;
    scores[e] += bias.row(bh / d.H, bh % d.H, i + query_offset)[j];
  }
}

/// dbias[bh, x] from the stored score gradient ds [B, H, Tq, Tk], in query order.
__global__ void diagonal_sums(const float* ds, float* dbias, AttnDims d, int64_t query_offset,
                              Bias bias) {
  const int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (e >= d.B * d.H * bias.span) return;
  const int64_t bh = e / bias.span, x = e % bias.span;
  float acc = 0;
  for (int64_t i = 0; i < d.Tq; ++i) {
    const int64_t j = x - bias.origin + i + query_offset;
    if (j >= 0 && j < d.Tk) acc += ds[(bh * d.Tq + i) * d.Tk + j];
  }
  dbias[e] = acc;
}

}  // namespace

void flash_attention(Queue q, const float* Q, const float* K, const float* V, float* O, float* lse,
                     const AttnDims& d, const Mask& m, float scale, const Bias& bias) {
  check_head_width(d.Dh);
  if (d.B * d.H == 0 || d.Tq == 0) return;
  use_device(q);
  flash_forward<<<row_grid(d.B * d.H, d.Tq), kAttnWarps * 32, smem_bytes(d.Dh), stream_of(q)>>>(
      Q, K, V, O, lse, d, m, scale, bias);
  check_launch("flash_attention");
}

void flash_attention_backward(Queue q, const float* Q, const float* K, const float* V,
                              const float* O, const float* lse, const float* dout, float* dq,
                              float* dk, float* dv, float* scratch, const AttnDims& d,
                              const Mask& m, float scale, const Bias& bias, float* dbias) {
  check_head_width(d.Dh);
  if (d.B * d.H == 0) return;
  use_device(q);
  const int64_t rows = d.B * d.H * d.Tq;
  float* D = scratch;
  if (rows > 0) {
    row_dots<<<static_cast<unsigned>(attn_row_blocks(rows)), kAttnWarps * 32, 0, stream_of(q)>>>(
        dout, O, D, rows, d.Dh);
    check_launch("flash_attention_backward (dO.o)");
  }
  if (d.Tq > 0) {
    flash_backward_dq<<<row_grid(d.B * d.H, d.Tq), kAttnWarps * 32, smem_bytes(d.Dh),
                        stream_of(q)>>>(Q, K, V, lse, D, dout, dq, d, m, scale, bias);
    check_launch("flash_attention_backward (dq)");
  }
  if (d.Tk > 0) {
    flash_backward_dkdv<<<row_grid(d.B * d.H, d.Tk), kAttnWarps * 32, smem_bytes(d.Dh),
                          stream_of(q)>>>(Q, K, V, lse, D, dout, dk, dv, d, m, scale, bias);
    check_launch("flash_attention_backward (dk, dv)");
  }
  if (dbias) {
    flash_backward_dbias<<<blocks_for(d.B * d.H * bias.span), kThreads, 0, stream_of(q)>>>(
        Q, K, V, lse, D, dout, dbias, d, m, scale, bias);
    check_launch("flash_attention_backward (dbias)");
  }
}

void attention(Queue q, const float* Q, const float* K, const float* V, float* O, float* P,
               const AttnDims& d, const Mask& m, float scale, const Bias& bias) {
  const int64_t bh = d.B * d.H;
  if (bh == 0 || d.Tq == 0) return;
  sgemm_batched(q, false, true, d.Tq, d.Tk, d.Dh, scale, Q, d.Dh, d.Tq * d.Dh, K, d.Dh, d.Tk * d.Dh,
                0.f, P, d.Tk, d.Tq * d.Tk, bh);
  if (bias.data) {
    use_device(q);
    add_bias_kernel<<<blocks_for(bh * d.Tq * d.Tk), kThreads, 0, stream_of(q)>>>(
        P, d, m.query_offset, bias);
    check_launch("attention (bias)");
  }
  softmax(q, P, P, d, m);  // in place: a row is read whole before it is written
  sgemm_batched(q, false, false, d.Tq, d.Dh, d.Tk, 1.f, P, d.Tk, d.Tq * d.Tk, V, d.Dh, d.Tk * d.Dh,
                0.f, O, d.Dh, d.Tq * d.Dh, bh);
}

void attention_backward(Queue q, const float* Q, const float* K, const float* V, const float* P,
                        const float* dout, float* dq, float* dk, float* dv, float* scratch,
                        const AttnDims& d, float scale, int64_t query_offset, const Bias& bias,
                        float* dbias) {
  const int64_t bh = d.B * d.H;
  if (bh == 0) return;
  // dv = p^T dO;  ds = softmax_backward(p, dO v^T) (in place in scratch);  dq = scale ds k;
  // dk = scale ds^T q
  sgemm_batched(q, true, false, d.Tk, d.Dh, d.Tq, 1.f, P, d.Tk, d.Tq * d.Tk, dout, d.Dh,
                d.Tq * d.Dh, 0.f, dv, d.Dh, d.Tk * d.Dh, bh);
  sgemm_batched(q, false, true, d.Tq, d.Tk, d.Dh, 1.f, dout, d.Dh, d.Tq * d.Dh, V, d.Dh,
                d.Tk * d.Dh, 0.f, scratch, d.Tk, d.Tq * d.Tk, bh);
  softmax_backward(q, P, scratch, scratch, bh * d.Tq, d.Tk);
  if (dbias) {
    use_device(q);
    diagonal_sums<<<blocks_for(bh * bias.span), kThreads, 0, stream_of(q)>>>(scratch, dbias, d,
                                                                             query_offset, bias);
    check_launch("attention_backward (dbias)");
  }
  sgemm_batched(q, false, false, d.Tq, d.Dh, d.Tk, scale, scratch, d.Tk, d.Tq * d.Tk, K, d.Dh,
                d.Tk * d.Dh, 0.f, dq, d.Dh, d.Tq * d.Dh, bh);
  sgemm_batched(q, true, false, d.Tk, d.Dh, d.Tq, scale, scratch, d.Tk, d.Tq * d.Tk, Q, d.Dh,
                d.Tq * d.Dh, 0.f, dk, d.Dh, d.Tk * d.Dh, bh);
}

}  // namespace attend::cuda
