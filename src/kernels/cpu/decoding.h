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

}  // namespace attend::cpu
