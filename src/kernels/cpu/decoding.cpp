// Decoding kernels (see decoding.h). Cache moves: one memcpy per (row, group), rows split over
// threads. top_k: a sorted list of k per row, 16-column blocks skipped when nothing beats the k-th.
#include "kernels/cpu/decoding.h"

#include <algorithm>
#include <cstring>
#include <utility>
#include <vector>

#include "core/thread_pool.h"

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

void top_k(const float* x, int64_t n, int64_t V, int64_t k, const int32_t* banned, int64_t nbanned,
           const int32_t* row_banned, float* values, int32_t* indices, int32_t* counts) {
  using Scored = std::pair<float, int32_t>;
  parallel_for(n, 8, [&](int64_t r0, int64_t r1) {
    std::vector<Scored> out;
    out.reserve(static_cast<size_t>(k) + 1);
    for (int64_t r = r0; r < r1; ++r) {
      const float* row = x + r * V;
      const int32_t extra = row_banned ? row_banned[r] : -1;
      auto skip = [&](int64_t v) {
        if (v == extra) return true;
        for (int64_t b = 0; b < nbanned; ++b)
          if (banned[b] == v) return true;
        return false;
      };
      out.clear();
      for (int64_t v0 = 0; v0 < V; v0 += 16) {
        const int64_t v1 = std::min<int64_t>(V, v0 + 16);
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

}  // namespace attend::cpu
