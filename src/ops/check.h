// Validation helpers shared by the ops: each failure names the op and the offending shapes.
#pragma once
#include <string_view>

#include "core/tensor.h"

namespace attend::ops::detail {

void check_defined(std::string_view op, const char* arg, const Tensor& t);
void check_float(std::string_view op, const char* arg, const Tensor& t);
void check_dtype(std::string_view op, const char* arg, const Tensor& t, DType dt);
void check_same_dtype(std::string_view op, const Tensor& a, const Tensor& b);
void check_same_device(std::string_view op, const Tensor& a, const Tensor& b);
void check_same_shape(std::string_view op, const Tensor& a, const Tensor& b);
void check_dim(std::string_view op, const char* arg, const Tensor& t, int64_t dims);
/// Throws "op: not implemented for <device> <dtype>".
[[noreturn]] void unsupported(std::string_view op, const Tensor& t);

}  // namespace attend::ops::detail
