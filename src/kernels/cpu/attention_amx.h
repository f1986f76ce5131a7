// The two products of the fused attention's forward pass on AMX tiles (bf16 multiplies, fp32
// accumulation) with fp32 accuracy from a split of every operand into three bf16 parts:
// x = hi + mid + lo to within 2^-24 |x|, and x y ~ the six part products above 2^-24 |x y|
// (hi hi, hi mid, mid hi, hi lo, mid mid, lo hi). Used by flash_attention<float> when the CPU
// and the OS allow it (docs/attention.md).
#pragma once
#include <cstdint>

namespace attend::cpu::amx {

/// Whether the AMX path runs: the CPU has AMX-TILE, AMX-BF16 and AVX512-BF16, Linux granted
/// this process the tile data state, and it has not been switched off (ATTEND_AMX=0 or
/// set_enabled(false)).
bool enabled();
/// Switches the AMX path on or off (on only where the CPU and OS allow it; tests and benchmarks
/// compare both paths). Returns the previous setting.
bool set_enabled(bool on);

/// Keys of one head, k [Tk, Dh] (Dh a multiple of 32), as the right operand of S = Q K^T: three
/// bf16 parts (x = hi + mid + lo), each split_words(Tk, Dh) 32-bit words (pairs along d) in
/// blocks of 64 keys, [Tkp / 64][Dh / 2][64], Tkp = Tk rounded up to 64 (zero keys past Tk).
void split_keys(const float* k, int64_t Tk, int64_t Dh, uint32_t* out);
/// Values of one head, v [Tk, Dh], as the right operand of P V: three parts, each [Tkp / 2][Dh]
/// 32-bit words (pairs along the keys; zero keys past Tk).
void split_values(const float* v, int64_t Tk, int64_t Dh, uint32_t* out);

/// Words per part of split_keys / split_values output.
inline int64_t split_words(int64_t Tk, int64_t Dh) { return (Tk + 63) / 64 * 64 * Dh / 2; }

/// Holds the tile configuration for the calls below on this thread (8 tiles of 16 x 64 bytes);
/// releases the tile state when destroyed. Needs enabled().
class TileScope {
 public:
  TileScope();
  ~TileScope();
  TileScope(const TileScope&) = delete;
  TileScope& operator=(const TileScope&) = delete;
};

/// One query tile of at most 64 rows: q [nq, Dh] (row stride Dh) times `scale`, split into three
/// parts of [64, Dh] bf16 each in out (rows past nq zero).
void split_queries(const float* q, int64_t nq, int64_t Dh, float scale, uint16_t* out);
/// S [rows, 64] (row stride 64, rows = nq rounded up to 16) = Q K^T for the nk <= 64 keys from
/// j0 (a multiple of 64); columns past nk are not meaningful. ksplit/words: split_keys output.
void scores(const uint16_t* qsplit, int64_t nq, int64_t Dh, const uint32_t* ksplit,
            int64_t words, int64_t j0, int64_t nk, float* S);
/// acc [rows, Dh] (row stride Dh, rows = nq rounded up to 16) += P V over the nk keys from j0,
/// P = S [nq, 64] (row stride 64; columns past nk ignored). psplit: scratch of 3 x 64 x 64 bf16.
void accumulate_pv(const float* S, int64_t nq, int64_t nk, int64_t Dh, const uint32_t* vsplit,
                   int64_t words, int64_t j0, uint16_t* psplit, float* acc);

}  // namespace attend::cpu::amx
