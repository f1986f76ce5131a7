// Tensor: a shape, strides and an element offset over shared storage on one device.
// reshape/transpose/slice/view return views that share storage (no copy) where the layout
// allows; contiguous() copies only when needed. Kernels take raw pointers of contiguous tensors.
#pragma once
#include <memory>
#include <vector>

#include "core/allocator.h"
#include "core/error.h"
#include "core/types.h"

namespace attend {

struct Storage {
  Storage(size_t nbytes, Device device);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  void* data = nullptr;
  size_t nbytes = 0;
  Device device;
  Allocator* allocator = nullptr;
};

class Tensor {
 public:
  Tensor() = default;

  /// Uninitialised tensor (CPU memory comes from current_cpu_allocator()).
  static Tensor empty(const Shape& shape, DType dtype = DType::kF32, Device device = Device::cpu());
  static Tensor zeros(const Shape& shape, DType dtype = DType::kF32, Device device = Device::cpu());
  static Tensor full(const Shape& shape, double value, DType dtype = DType::kF32);
  template <typename T>
  static Tensor from_vector(const std::vector<T>& values, const Shape& shape);

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  const std::vector<int64_t>& strides() const { return strides_; }
  int64_t dim() const { return static_cast<int64_t>(shape_.size()); }
  /// Size of dimension d; negative d counts from the end.
  int64_t size(int64_t d) const;
  int64_t numel() const { return shape_numel(shape_); }
  DType dtype() const { return dtype_; }
  Device device() const { return storage_ ? storage_->device : Device::cpu(); }
  int64_t offset() const { return offset_; }
  bool is_contiguous() const;
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }
  /// True when both tensors view the same storage.
  bool shares_storage(const Tensor& other) const { return storage_ == other.storage_; }

  void* raw_data() const;
  template <typename T>
  T* data() const {
    check_type<T>();
    return static_cast<T*>(raw_data());
  }

  /// View with a new shape (one entry may be -1). Copies only if this tensor is not contiguous.
  Tensor reshape(Shape shape) const;
  /// Swaps two dimensions without copying.
  Tensor transpose(int64_t d0, int64_t d1) const;
  /// Elements [start, end) of dimension d, without copying.
  Tensor slice(int64_t d, int64_t start, int64_t end) const;
  /// This tensor if contiguous, else a contiguous copy.
  Tensor contiguous() const;
  Tensor clone() const;
  Tensor to(Device device) const;
  /// Converts element type (f32 <-> f64/bf16/f16/i32/i8) on the CPU. To i8, every value must
  /// be an integer in [-128, 127] (quantize real values with ops::quantize_rows).
  Tensor to(DType dtype) const;
  /// Copies the values of src (same shape and dtype, any device) into this tensor.
  void copy_from(const Tensor& src);
  void zero_();

  template <typename T>
  std::vector<T> to_vector() const;
  /// The single element of a one-element tensor, as double.
  double item() const;

  std::string str() const;  // "f32[2, 3] cpu"

 private:
  template <typename T>
  void check_type() const;
  std::shared_ptr<Storage> storage_;
  Shape shape_;
  std::vector<int64_t> strides_;
  int64_t offset_ = 0;
  DType dtype_ = DType::kF32;
};

template <typename T>
constexpr DType dtype_of();
template <>
constexpr DType dtype_of<float>() { return DType::kF32; }
template <>
constexpr DType dtype_of<double>() { return DType::kF64; }
template <>
constexpr DType dtype_of<int32_t>() { return DType::kI32; }
template <>
constexpr DType dtype_of<int8_t>() { return DType::kI8; }
template <>
constexpr DType dtype_of<bf16>() { return DType::kBF16; }
template <>
constexpr DType dtype_of<f16>() { return DType::kF16; }

template <typename T>
void Tensor::check_type() const {
  ATTEND_CHECK(defined(), "tensor: access to an undefined tensor");
  ATTEND_CHECK(dtype_ == dtype_of<T>(), "tensor: data<{}>() on a {} tensor {}",
               dtype_name(dtype_of<T>()), dtype_name(dtype_), shape_str(shape_));
}

std::vector<int64_t> contiguous_strides(const Shape& shape);

}  // namespace attend
