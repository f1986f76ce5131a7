// The machine's measured fp32 peak: a register-only FMA loop on every pool thread.
#pragma once

namespace attend::bench {

/// Measured fp32 GFLOP/s of independent FMA chains on all threads of the pool (best of 8).
double measured_fma_peak_gflops();

}  // namespace attend::bench
