// Decoding kernels (see decoding.h). Cache moves: one memcpy per (row, group), rows split over
// threads. top_k: a sorted list of k per row, 16-column blocks skipped when nothing beats the k-th;
// top_k_logsumexp adds the row's log sum exp in the same pass (the decoding step's fused
// log-softmax and top-k).
#include "kernels/cpu/decoding.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/cpu/vec_math.h"

namespace attend::cpu {

void write_positions(char* dst, const char* src, const int32_t* rows, const int32_t* offsets,
                     int64_t n, int64_t groups, int64_t capacity, int64_t t, int64_t width_bytes) {
  parallel_for(n, 4, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i)
      for (int64_t g = 0; g < groups; ++g)
        std::memcpy(dst + ((rows[i] * groups + g) * capacity + offsets[i]) * width_bytes,
                    src + (i * groups + g) * t * width_bytes,
                    static_cast<size_t>(t * width_bytes));
  });
}

void copy_positions(char* x, const int32_t* from, const int32_t* to, const int32_t* lengths,
                    int64_t n, int64_t groups, int64_t capacity, int64_t width_bytes) {
  parallel_for(n, 4, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i)
      for (int64_t g = 0; g < groups; ++g)
        std::memcpy(x + (to[i] * groups + g) * capacity * width_bytes,
                    x + (from[i] * groups + g) * capacity * width_bytes,
                    static_cast<size_t>(lengths[i] * width_bytes));
  });
}

namespace {

// Column blocks of one row: small enough to stay in L1 between the top-k scan and the sum.
constexpr int64_t kChunk = 512;

// The sum of exp(x[v] - m) over a block, vectorised (fast_exp: see vec_math.h).
ATTEND_MULTIVERSION float sum_exp(const float* x, int64_t n, float m) {
  float s = 0.f;
  for (int64_t v = 0; v < n; ++v) s += fast_exp(x[v] - m);
  return s;
}

ATTEND_MULTIVERSION float block_max(const float* x, int64_t n) { return row_max(x, n); }

// One row: the top k (best first) into out, and (with_lse) log sum exp over every column, in one
// pass over the row: each block of kChunk columns is scanned for the top k, then its exponentials
// are summed against the running maximum (rescaling the sum when the maximum grows).
template <bool with_lse>
float row_top_k(const float* row, int64_t V, int64_t k, const int32_t* banned, int64_t nbanned,
                int32_t extra, std::vector<std::pair<float, int32_t>>& out) {
  using Scored = std::pair<float, int32_t>;
  auto skip = [&](int64_t v) {
    if (v == extra) return true;
    for (int64_t b = 0; b < nbanned; ++b)
      if (banned[b] == v) return true;
    return false;
  };
  out.clear();
  float m = -std::numeric_limits<float>::infinity(), sum = 0.f;
  for (int64_t c0 = 0; c0 < V; c0 += kChunk) {
    const int64_t c1 = std::min(V, c0 + kChunk);
    // The block's maximum (vectorised) decides whether it can hold a candidate at all: once k
    // are found, most blocks of a logits row cannot, and their scan is skipped.
    const float bm = block_max(row + c0, c1 - c0);
    const bool full = static_cast<int64_t>(out.size()) == k;
    for (int64_t v0 = c0; v0 < c1 && !(full && !(bm > out.back().first)); v0 += 16) {
      const int64_t v1 = std::min<int64_t>(c1, v0 + 16);
      if (static_cast<int64_t>(out.size()) == k) {  // skip blocks with nothing above the k-th
        const float kth = out.back().first;
        bool any = false;
        for (int64_t v = v0; v < v1; ++v) any |= row[v] > kth;
        if (!any) continue;
      }
      for (int64_t v = v0; v < v1; ++v) {
        if (skip(v)) continue;
        const float xv = row[v];
        if (static_cast<int64_t>(out.size()) == k && !(xv > out.back().first)) continue;
        const auto at = std::upper_bound(out.begin(), out.end(), xv,
                                         [](float a, const Scored& c) { return a > c.first; });
        if (static_cast<int64_t>(out.size()) == k) out.pop_back();
        out.insert(at, {xv, static_cast<int32_t>(v)});
      }
    }
    if constexpr (with_lse) {
      if (bm > m) {
        sum = m == -std::numeric_limits<float>::infinity() ? 0.f : sum * std::exp(m - bm);
        m = bm;
      }
      sum += sum_exp(row + c0, c1 - c0, m);
    }
  }
  return with_lse ? m + std::log(sum) : 0.f;
}

template <bool with_lse>
void top_k_rows(const float* x, int64_t n, int64_t V, int64_t k, const int32_t* banned,
                int64_t nbanned, const int32_t* row_banned, float* values, int32_t* indices,
                int32_t* counts, float* lse) {
  parallel_for(n, 8, [&](int64_t r0, int64_t r1) {
    std::vector<std::pair<float, int32_t>> out;
    out.reserve(static_cast<size_t>(k) + 1);
    for (int64_t r = r0; r < r1; ++r) {
      const float l = row_top_k<with_lse>(x + r * V, V, k, banned, nbanned,
                                          row_banned ? row_banned[r] : -1, out);
      if constexpr (with_lse) lse[r] = l;
      counts[r] = static_cast<int32_t>(out.size());
      for (size_t i = 0; i < out.size(); ++i) {
        values[r * k + static_cast<int64_t>(i)] = out[i].first;
        indices[r * k + static_cast<int64_t>(i)] = out[i].second;
      }
      for (int64_t i = static_cast<int64_t>(out.size()); i < k; ++i) {
        values[r * k + i] = 0;
        indices[r * k + i] = -1;
      }
    }
  });
}

}  // namespace

void top_k(const float* x, int64_t n, int64_t V, int64_t k, const int32_t* banned, int64_t nbanned,
           const int32_t* row_banned, float* values, int32_t* indices, int32_t* counts) {
  top_k_rows<false>(x, n, V, k, banned, nbanned, row_banned, values, indices, counts, nullptr);
}

void top_k_logsumexp(const float* x, int64_t n, int64_t V, int64_t k, const int32_t* banned,
                     int64_t nbanned, const int32_t* row_banned, float* values, int32_t* indices,
                     int32_t* counts, float* lse) {
  top_k_rows<true>(x, n, V, k, banned, nbanned, row_banned, values, indices, counts, lse);
}

namespace {

// One row's draw (see sample in decoding.h); buf is the caller's scratch.
int32_t sample_row(const float* row, int64_t V, const int32_t* banned, int64_t nbanned,
                   int32_t extra, double temperature, int32_t top_k, double top_p, float u,
                   std::vector<std::pair<float, int32_t>>& buf) {
  using Scored = std::pair<float, int32_t>;  // (logit, token)
  buf.clear();
  for (int32_t v = 0; v < V; ++v) {
    bool skip = v == extra;
    for (int64_t b = 0; b < nbanned && !skip; ++b) skip = banned[b] == v;
    if (!skip) buf.push_back({row[v], v});
  }
  if (buf.empty()) return -1;
  auto better = [](const Scored& a, const Scored& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  size_t keep = buf.size();
  if (top_k > 0 && static_cast<size_t>(top_k) < keep) keep = static_cast<size_t>(top_k);
  std::partial_sort(buf.begin(), buf.begin() + static_cast<int64_t>(keep), buf.end(), better);
  buf.resize(keep);
  std::vector<double> p(keep);
  double total = 0;
  for (size_t i = 0; i < keep; ++i) {
    p[i] = std::exp((static_cast<double>(buf[i].first) - buf[0].first) / temperature);
    total += p[i];
  }
  if (top_p < 1) {  // the smallest prefix whose probability reaches top_p
    double mass = 0;
    size_t cut = 0;
    while (cut < keep) {
      mass += p[cut++] / total;
      if (mass >= top_p) break;
    }
    keep = cut;
    total = 0;
    for (size_t i = 0; i < keep; ++i) total += p[i];
  }
  double target = static_cast<double>(u) * total;
  for (size_t i = 0; i < keep; ++i) {
    target -= p[i];
    if (target < 0) return buf[i].second;
  }
  return buf[keep - 1].second;
}

}  // namespace

void sample(const float* x, int64_t V, const int32_t* rows, int64_t m, const int32_t* banned,
            int64_t nbanned, const int32_t* row_banned, const double* temperature,
            const int32_t* top_k, const double* top_p, const float* uniform, int32_t* out) {
  parallel_for(m, 1, [&](int64_t i0, int64_t i1) {
    std::vector<std::pair<float, int32_t>> buf;
    for (int64_t i = i0; i < i1; ++i)
      out[i] = sample_row(x + rows[i] * V, V, banned, nbanned,
                          row_banned ? row_banned[rows[i]] : -1, temperature[i], top_k[i],
                          top_p[i], uniform[i], buf);
  });
}

void pick(const float* x, int64_t V, const int32_t* rows, const int32_t* cols, int64_t m,
          float* out) {
  for (int64_t i = 0; i < m; ++i) out[i] = x[rows[i] * V + cols[i]];
}

void iota(int32_t* out, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) out[r * cols + c] = static_cast<int32_t>(c);
}

void add_index(const int32_t* x, int32_t k, int32_t* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] + k;
}

}  // namespace attend::cpu
