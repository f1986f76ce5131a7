// Tensor implementation: storage ownership, views and copies.
#include "core/tensor.h"

#include <cmath>
#include <algorithm>
#include <sstream>

#include "core/device.h"
#include "core/thread_pool.h"

namespace attend {

Storage::Storage(size_t n, Device d) : nbytes(n), device(d) {
  allocator = d.is_cpu() ? current_cpu_allocator() : cuda_allocator(d.index);
  data = allocator->allocate(n);
}

Storage::~Storage() { allocator->deallocate(data, nbytes); }

std::vector<int64_t> contiguous_strides(const Shape& shape) {
  std::vector<int64_t> s(shape.size());
  int64_t acc = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  for (int64_t d : shape)
    ATTEND_CHECK(d >= 0, "tensor: negative dimension in shape {}", shape_str(shape));
  Tensor t;
  t.shape_ = shape;
  t.strides_ = contiguous_strides(shape);
  t.dtype_ = dtype;
  t.storage_ = std::make_shared<Storage>(static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype),
                                         device);
  return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  t.zero_();
  return t;
}

Tensor Tensor::full(const Shape& shape, double value, DType dtype) {
  Tensor t = empty(shape, dtype);
  const int64_t n = t.numel();
  switch (dtype) {
    case DType::kF32: std::fill_n(t.data<float>(), n, static_cast<float>(value)); break;
    case DType::kF64: std::fill_n(t.data<double>(), n, value); break;
    case DType::kI32: std::fill_n(t.data<int32_t>(), n, static_cast<int32_t>(value)); break;
    case DType::kI8: std::fill_n(t.data<int8_t>(), n, static_cast<int8_t>(value)); break;
    case DType::kBF16: std::fill_n(t.data<bf16>(), n, to_bf16(static_cast<float>(value))); break;
    case DType::kF16: std::fill_n(t.data<f16>(), n, to_f16(static_cast<float>(value))); break;
  }
  return t;
}

template <typename T>
Tensor Tensor::from_vector(const std::vector<T>& values, const Shape& shape) {
  ATTEND_CHECK(static_cast<int64_t>(values.size()) == shape_numel(shape),
               "tensor: {} values for shape {}", values.size(), shape_str(shape));
  Tensor t = empty(shape, dtype_of<T>());
  std::copy(values.begin(), values.end(), t.data<T>());
  return t;
}
template Tensor Tensor::from_vector(const std::vector<float>&, const Shape&);
template Tensor Tensor::from_vector(const std::vector<double>&, const Shape&);
template Tensor Tensor::from_vector(const std::vector<int32_t>&, const Shape&);
template Tensor Tensor::from_vector(const std::vector<int8_t>&, const Shape&);

int64_t Tensor::size(int64_t d) const {
  const int64_t n = dim();
  ATTEND_CHECK(d >= -n && d < n, "tensor: dimension {} out of range for shape {}", d,
               shape_str(shape_));
  return shape_[static_cast<size_t>(d < 0 ? d + n : d)];
}

// Row-major order in memory; the stride of a dimension of size 1 never moves a pointer, so it
// does not matter (a [B, 1, H, Dh] tensor transposed to [B, H, 1, Dh] needs no copy).
bool Tensor::is_contiguous() const {
  if (numel() <= 1) return true;
  int64_t expected = 1;
  for (int64_t d = dim() - 1; d >= 0; --d) {
    const auto i = static_cast<size_t>(d);
    if (shape_[i] != 1 && strides_[i] != expected) return false;
    expected *= shape_[i];
  }
  return true;
}

void* Tensor::raw_data() const {
  ATTEND_CHECK(defined(), "tensor: access to an undefined tensor");
  return static_cast<char*>(storage_->data) + offset_ * static_cast<int64_t>(dtype_size(dtype_));
}

Tensor Tensor::reshape(Shape shape) const {
  int64_t infer = -1, known = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      ATTEND_CHECK(infer < 0, "reshape: more than one -1 in {}", shape_str(shape));
      infer = static_cast<int64_t>(i);
    } else {
      known *= shape[i];
    }
  }
  if (infer >= 0) {
    ATTEND_CHECK(known > 0 && numel() % known == 0, "reshape: cannot reshape {} to {}",
                 shape_str(shape_), shape_str(shape));
    shape[static_cast<size_t>(infer)] = numel() / known;
  }
  ATTEND_CHECK(shape_numel(shape) == numel(), "reshape: cannot reshape {} ({} elements) to {}",
               shape_str(shape_), numel(), shape_str(shape));
  Tensor t = is_contiguous() ? *this : contiguous();
  t.shape_ = std::move(shape);
  t.strides_ = contiguous_strides(t.shape_);
  return t;
}

Tensor Tensor::transpose(int64_t d0, int64_t d1) const {
  const int64_t n = dim();
  ATTEND_CHECK(d0 >= -n && d0 < n && d1 >= -n && d1 < n,
               "transpose: dimensions ({}, {}) out of range for shape {}", d0, d1,
               shape_str(shape_));
  if (d0 < 0) d0 += n;
  if (d1 < 0) d1 += n;
  Tensor t = *this;
  std::swap(t.shape_[d0], t.shape_[d1]);
  std::swap(t.strides_[d0], t.strides_[d1]);
  return t;
}

Tensor Tensor::slice(int64_t d, int64_t start, int64_t end) const {
  const int64_t n = dim();
  ATTEND_CHECK(d >= -n && d < n, "slice: dimension {} out of range for shape {}", d,
               shape_str(shape_));
  if (d < 0) d += n;
  ATTEND_CHECK(0 <= start && start <= end && end <= shape_[d],
               "slice: range [{}, {}) out of bounds for dimension {} of shape {}", start, end, d,
               shape_str(shape_));
  Tensor t = *this;
  t.offset_ += start * strides_[d];
  t.shape_[d] = end - start;
  return t;
}

namespace {
// A strided view's dimensions with size-1 dimensions dropped and each dimension that is
// contiguous with its inner neighbour merged into it: the fewest loops that visit the view.
void merge_dims(const Shape& shape_in, const std::vector<int64_t>& strides_in, Shape& shape,
                std::vector<int64_t>& strides) {
  for (size_t k = 0; k < shape_in.size(); ++k) {
    if (shape_in[k] == 1) continue;
    if (!shape.empty() && strides.back() == strides_in[k] * shape_in[k]) {
      shape.back() *= shape_in[k];
      strides.back() = strides_in[k];
    } else {
      shape.push_back(shape_in[k]);
      strides.push_back(strides_in[k]);
    }
  }
}

// Strided gather of `src` into contiguous `dst` (CPU), element size `es`. Dimensions are merged
// first (merge_dims); rows whose last stride is 1 are copied with memcpy, and rows are split over
// the thread pool (head split/merge transposes in attention go through here every step).
void gather_strided(char* dst, const char* src, const Shape& shape_in,
                    const std::vector<int64_t>& strides_in, size_t es) {
  Shape shape;
  std::vector<int64_t> strides;
  merge_dims(shape_in, strides_in, shape, strides);
  if (shape.empty()) {
    std::memcpy(dst, src, es);
    return;
  }
  const int64_t n = shape_numel(shape);
  const size_t nd = shape.size();
  const int64_t inner = shape.back(), inner_stride = strides.back();
  const int64_t rows = n / inner;
  parallel_for(rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(inner, 1)), [&](int64_t r0, int64_t r1) {
    std::vector<int64_t> idx(nd, 0);
    int64_t rem = r0;
    for (size_t k = nd - 1; k-- > 0;) {
      idx[k] = rem % shape[k];
      rem /= shape[k];
    }
    for (int64_t r = r0; r < r1; ++r) {
      int64_t off = 0;
      for (size_t k = 0; k + 1 < nd; ++k) off += idx[k] * strides[k];
      char* d = dst + r * inner * static_cast<int64_t>(es);
      const char* s = src + off * static_cast<int64_t>(es);
      if (inner_stride == 1) {
        std::memcpy(d, s, static_cast<size_t>(inner) * es);
      } else if (es == 4) {
        for (int64_t i = 0; i < inner; ++i)
          std::memcpy(d + i * 4, s + i * inner_stride * 4, 4);
      } else {
        for (int64_t i = 0; i < inner; ++i)
          std::memcpy(d + i * static_cast<int64_t>(es), s + i * inner_stride * static_cast<int64_t>(es), es);
      }
      for (size_t k = nd - 1; k-- > 0;) {
        if (++idx[k] < shape[k]) break;
        idx[k] = 0;
      }
    }
  });
}
}  // namespace

Tensor Tensor::contiguous() const {
  if (is_contiguous()) return *this;
  Tensor t = empty(shape_, dtype_, device());
  if (device().is_cuda()) {
#ifdef ATTEND_WITH_CUDA
    Shape shape;
    std::vector<int64_t> strides;
    merge_dims(shape_, strides_, shape, strides);
    cuda_gather_strided(t.raw_data(), raw_data(), device(), shape, strides, dtype_size(dtype_));
    return t;
#endif
  }
  gather_strided(static_cast<char*>(t.raw_data()), static_cast<const char*>(raw_data()), shape_,
                 strides_, dtype_size(dtype_));
  return t;
}

Tensor Tensor::clone() const {
  Tensor src = contiguous();
  Tensor t = empty(shape_, dtype_, device());
  copy_bytes(t.raw_data(), t.device(), src.raw_data(), src.device(), nbytes());
  return t;
}

Tensor Tensor::to(Device d) const {
  if (d == device()) return *this;
  Tensor src = contiguous();
  Tensor t = empty(shape_, dtype_, d);
  copy_bytes(t.raw_data(), d, src.raw_data(), src.device(), nbytes());
  return t;
}

namespace {
template <typename T>
float load_f32(const T& v) {
  if constexpr (std::is_same_v<T, bf16>) return from_bf16(v);
  else if constexpr (std::is_same_v<T, f16>) return from_f16(v);
  else return static_cast<float>(v);
}
template <typename T>
T store_from_double(double v) {
  if constexpr (std::is_same_v<T, int8_t>) {
    ATTEND_CHECK(v >= -128 && v <= 127 && v == std::floor(v),
                 "to(i8): value {} is not an integer in [-128, 127] (quantize real values with "
                 "ops::quantize_rows)", v);
    return static_cast<int8_t>(v);
  } else if constexpr (std::is_same_v<T, bf16>) return to_bf16(static_cast<float>(v));
  else if constexpr (std::is_same_v<T, f16>) return to_f16(static_cast<float>(v));
  else return static_cast<T>(v);
}
// Every value goes through double, which holds f32, bf16, f16 and i32 exactly.
template <typename Src, typename Dst>
void convert(const Src* s, Dst* d, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    if constexpr (std::is_same_v<Src, double> || std::is_integral_v<Src>)
      d[i] = store_from_double<Dst>(static_cast<double>(s[i]));
    else
      d[i] = store_from_double<Dst>(static_cast<double>(load_f32(s[i])));
  }
}
template <typename Src>
void convert_to(const Src* s, void* d, DType dt, int64_t n) {
  switch (dt) {
    case DType::kF32: convert(s, static_cast<float*>(d), n); break;
    case DType::kF64: convert(s, static_cast<double*>(d), n); break;
    case DType::kBF16: convert(s, static_cast<bf16*>(d), n); break;
    case DType::kF16: convert(s, static_cast<f16*>(d), n); break;
    case DType::kI32: convert(s, static_cast<int32_t*>(d), n); break;
    case DType::kI8: convert(s, static_cast<int8_t*>(d), n); break;
  }
}
}  // namespace

Tensor Tensor::to(DType dt) const {
  if (dt == dtype_) return *this;
  ATTEND_CHECK(device().is_cpu(), "to({}): dtype conversion of a {} tensor on {} is not "
               "supported yet", dtype_name(dt), dtype_name(dtype_), device());
  Tensor src = contiguous();
  Tensor t = empty(shape_, dt);
  const int64_t n = numel();
  switch (dtype_) {
    case DType::kF32: convert_to(src.data<float>(), t.raw_data(), dt, n); break;
    case DType::kF64: convert_to(src.data<double>(), t.raw_data(), dt, n); break;
    case DType::kBF16: convert_to(src.data<bf16>(), t.raw_data(), dt, n); break;
    case DType::kF16: convert_to(src.data<f16>(), t.raw_data(), dt, n); break;
    case DType::kI32: convert_to(src.data<int32_t>(), t.raw_data(), dt, n); break;
    case DType::kI8: convert_to(src.data<int8_t>(), t.raw_data(), dt, n); break;
  }
  return t;
}

void Tensor::copy_from(const Tensor& src) {
  ATTEND_CHECK(src.shape() == shape_ && src.dtype() == dtype_,
               "copy_from: source {} {} does not match destination {} {}", dtype_name(src.dtype()),
               shape_str(src.shape()), dtype_name(dtype_), shape_str(shape_));
  ATTEND_CHECK(is_contiguous(), "copy_from: destination {} must be contiguous", shape_str(shape_));
  Tensor s = src.contiguous();
  copy_bytes(raw_data(), device(), s.raw_data(), s.device(), nbytes());
}

void Tensor::zero_() {
  ATTEND_CHECK(is_contiguous(), "zero_: tensor {} must be contiguous", shape_str(shape_));
  zero_bytes(raw_data(), device(), nbytes());
}

template <typename T>
std::vector<T> Tensor::to_vector() const {
  Tensor c = to(Device::cpu()).contiguous();
  const T* p = c.data<T>();
  return std::vector<T>(p, p + numel());
}
template std::vector<float> Tensor::to_vector() const;
template std::vector<double> Tensor::to_vector() const;
template std::vector<int32_t> Tensor::to_vector() const;
template std::vector<int8_t> Tensor::to_vector() const;

double Tensor::item() const {
  ATTEND_CHECK(numel() == 1, "item: tensor {} has {} elements, expected 1", shape_str(shape_),
               numel());
  return to(Device::cpu()).to(DType::kF64).data<double>()[0];
}

std::string Tensor::str() const {
  return format("{}{} {}", dtype_name(dtype_), shape_str(shape_), device());
}

}  // namespace attend
