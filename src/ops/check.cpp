// Validation helpers for the ops layer.
#include "ops/check.h"

namespace attend::ops::detail {

void check_defined(std::string_view op, const char* arg, const Tensor& t) {
  ATTEND_CHECK(t.defined(), "{}: argument '{}' is undefined", op, arg);
}
void check_float(std::string_view op, const char* arg, const Tensor& t) {
  check_defined(op, arg, t);
  ATTEND_CHECK(t.dtype() == DType::kF32 || t.dtype() == DType::kF64,
               "{}: argument '{}' must be f32 or f64, got {}{}", op, arg, dtype_name(t.dtype()),
               shape_str(t.shape()));
}
void check_dtype(std::string_view op, const char* arg, const Tensor& t, DType dt) {
  check_defined(op, arg, t);
  ATTEND_CHECK(t.dtype() == dt, "{}: argument '{}' must be {}, got {}{}", op, arg, dtype_name(dt),
               dtype_name(t.dtype()), shape_str(t.shape()));
}
void check_same_dtype(std::string_view op, const Tensor& a, const Tensor& b) {
  ATTEND_CHECK(a.dtype() == b.dtype(), "{}: dtype mismatch {}{} vs {}{}", op, dtype_name(a.dtype()),
               shape_str(a.shape()), dtype_name(b.dtype()), shape_str(b.shape()));
}
void check_same_device(std::string_view op, const Tensor& a, const Tensor& b) {
  ATTEND_CHECK(a.device() == b.device(), "{}: device mismatch {} on {} vs {} on {}", op,
               shape_str(a.shape()), a.device(), shape_str(b.shape()), b.device());
}
void check_same_shape(std::string_view op, const Tensor& a, const Tensor& b) {
  ATTEND_CHECK(a.shape() == b.shape(), "{}: shape mismatch {} vs {}", op, shape_str(a.shape()),
               shape_str(b.shape()));
}
void check_dim(std::string_view op, const char* arg, const Tensor& t, int64_t dims) {
  ATTEND_CHECK(t.dim() == dims, "{}: argument '{}' must have {} dimensions, got {}", op, arg, dims,
               shape_str(t.shape()));
}
void unsupported(std::string_view op, const Tensor& t) {
  ATTEND_FAIL("{}: not implemented for {} {} (tensor {})", op, t.device(), dtype_name(t.dtype()),
              shape_str(t.shape()));
}

}  // namespace attend::ops::detail
