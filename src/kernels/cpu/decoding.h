// Decoding kernels: key/value cache moves on raw bytes (any element type) -- writing new
// positions into cache slots, copying a slot's prefix into another slot (beam branching) -- and
// the top-k of each logits row. Layout of a cache: [slots, groups, capacity, width] row-major.
#pragma once
#include <cstdint>

namespace attend::cpu {

/// dst[rows[i], g, offsets[i] + j, :] = src[i, g, j, :] for i < n, g < groups, j < t.
/// dst [dst_slots, groups, capacity, width], src [n, groups, t, width]; elem bytes each.
void write_positions(char* dst, const char* src, const int32_t* rows, const int32_t* offsets,
                     int64_t n, int64_t groups, int64_t capacity, int64_t t, int64_t width_bytes);
/// x[to[i], g, j, :] = x[from[i], g, j, :] for j < lengths[i] (no `to` slot is also a `from`).
void copy_positions(char* x, const int32_t* from, const int32_t* to, const int32_t* lengths,
                    int64_t n, int64_t groups, int64_t capacity, int64_t width_bytes);

/// The k largest values of each row of x [n, V], best first; equal values keep the lower column
/// first. Columns in banned[0..nbanned) are skipped in every row, column row_banned[r] (when
/// row_banned is given and it is >= 0) in row r. counts[r] <= k says how many were found.
void top_k(const float* x, int64_t n, int64_t V, int64_t k, const int32_t* banned, int64_t nbanned,
           const int32_t* row_banned, float* values, int32_t* indices, int32_t* counts);
/// top_k, and lse[r] = log sum_v exp(x[r, v]) over every column (banned ones too), in one pass
/// over each row: a decoding step's candidates' log-probabilities are values - lse, with no
/// [n, V] log-softmax written and the logits read once.
void top_k_logsumexp(const float* x, int64_t n, int64_t V, int64_t k, const int32_t* banned,
                     int64_t nbanned, const int32_t* row_banned, float* values, int32_t* indices,
                     int32_t* counts, float* lse);

/// One token drawn from each of m rows of x [n, V]: row rows[i] gives out[i]. Columns in
/// banned[0..nbanned) and column row_banned[rows[i]] (when row_banned is given and it is >= 0)
/// are never drawn; of the others the top_k[i] largest are kept (0: all; equal values keep the
/// lower column), then the smallest best-first prefix whose probability at temperature[i]
/// reaches top_p[i] (1: all), and uniform[i] in [0, 1) picks by inverse CDF. out[i] = -1 when
/// every column is banned.
void sample(const float* x, int64_t V, const int32_t* rows, int64_t m, const int32_t* banned,
            int64_t nbanned, const int32_t* row_banned, const double* temperature,
            const int32_t* top_k, const double* top_p, const float* uniform, int32_t* out);
/// out[i] = x[rows[i] * V + cols[i]] for i < m.
void pick(const float* x, int64_t V, const int32_t* rows, const int32_t* cols, int64_t m,
          float* out);
/// out[r * cols + c] = c: each element its index along the last dimension.
void iota(int32_t* out, int64_t rows, int64_t cols);
/// out[i] = x[i] + k.
void add_index(const int32_t* x, int32_t k, int32_t* out, int64_t n);

}  // namespace attend::cpu
