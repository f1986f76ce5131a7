// ATTEND_HD marks a function that CUDA kernels call as well as host code (masks, bias offsets,
// Philox, activation formulas): __host__ __device__ under nvcc, nothing otherwise. So the CPU and
// the GPU compute the same masks, dropout bits and activations from one definition.
#pragma once

#if defined(__CUDACC__)
#define ATTEND_HD __host__ __device__
#else
#define ATTEND_HD
#endif
