// ATTEND_CUDA_CHECK / ATTEND_CUBLAS_CHECK: turn CUDA and cuBLAS status codes into attend::Error
// carrying the library's own error string. Include only from CUDA-enabled translation units.
#pragma once
#include <cuda_runtime.h>

#include "core/error.h"

#define ATTEND_CUDA_CHECK(expr)                                                          \
  do {                                                                                   \
    cudaError_t attend_st_ = (expr);                                                     \
    if (attend_st_ != cudaSuccess)                                                       \
      ::attend::throw_error(::attend::format("{}: {}", #expr, cudaGetErrorString(attend_st_)), \
                            __FILE__, __LINE__);                                         \
  } while (0)
