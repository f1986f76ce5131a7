// Decoding ops (see ops.h, "decoding"): validation, then the kernels of kernels/cpu/decoding.h.

#include <set>
#include <vector>

#include "ops/dispatch.h"

namespace attend::ops {
using namespace detail;
namespace {

// i32 [n] index tensor on the device of `data`, contiguous.
Tensor index_vector(std::string_view op, const char* arg, const Tensor& t, int64_t n,
                    const Tensor& data) {
  check_dtype(op, arg, t, DType::kI32);
  check_same_device(op, t, data);
  ATTEND_CHECK(t.dim() == 1 && t.size(0) == n, "{}: {} must have shape [{}], got {}", op, arg, n,
               shape_str(t.shape()));
  return t.contiguous();
}

void check_cache(std::string_view op, const Tensor& cache) {
  check_dim(op, "cache", cache, 4);
  ATTEND_CHECK(cache.is_contiguous(), "{}: the cache must be contiguous, got {}", op, cache.str());
}

// The values of an index vector where the host can read them: itself on the CPU, a copy from a
// device (a decoding step's few indices; the step reads back from the device anyway).
Tensor on_host(const Tensor& t) { return t.device().is_cpu() ? t : t.to(Device::cpu()); }

}  // namespace

void write_positions(Tensor& cache, const Tensor& src_in, const Tensor& rows_in,
                     const Tensor& offsets_in) {
  constexpr std::string_view op = "write_positions";
  check_cache(op, cache);
  check_dim(op, "src", src_in, 4);
  check_same_dtype(op, cache, src_in);
  check_same_device(op, cache, src_in);
  const int64_t n = src_in.size(0), G = cache.size(1), C = cache.size(2), W = cache.size(3);
  const int64_t t = src_in.size(2);
  ATTEND_CHECK(src_in.size(1) == G && src_in.size(3) == W, "{}: src {} does not fit the cache {}",
               op, shape_str(src_in.shape()), shape_str(cache.shape()));
  const Tensor rows = index_vector(op, "rows", rows_in, n, cache);
  const Tensor offsets = index_vector(op, "offsets", offsets_in, n, cache);
  const Tensor src = src_in.contiguous();
  const int64_t es = static_cast<int64_t>(dtype_size(cache.dtype()));
  // The indices are checked on the host first; then a copy of bytes, the same kernel for every
  // element type.
  const Tensor rows_host = on_host(rows), offsets_host = on_host(offsets);
  const int32_t* r = rows_host.data<int32_t>();
  const int32_t* o = offsets_host.data<int32_t>();
  for (int64_t i = 0; i < n; ++i) {
    ATTEND_CHECK(r[i] >= 0 && r[i] < cache.size(0), "{}: rows[{}] = {} outside [0, {})", op, i,
                 r[i], cache.size(0));
    ATTEND_CHECK(o[i] >= 0 && o[i] + t <= C,
                 "{}: positions [{}, {}) of row {} outside the capacity {}", op, o[i], o[i] + t, i,
                 C);
  }
  auto on_cpu = [&] {
    cpu::write_positions(static_cast<char*>(cache.raw_data()),
                         static_cast<const char*>(src.raw_data()), r, o, n, G, C, t, W * es);
  };
  dispatch(op, cache,
           {.cpu_f32 = on_cpu,
            .cpu_f64 = on_cpu,
            .cpu_bf16 = on_cpu,
            .cuda_f32 = ATTEND_ON_CUDA([&] {
              cuda::write_positions(queue(cache), cache.raw_data(), src.raw_data(),
                                    rows.data<int32_t>(), offsets.data<int32_t>(), n, G, C, t, W,
                                    es);
            })});
}

void copy_positions(Tensor& cache, const Tensor& from_in, const Tensor& to_in,
                    const Tensor& lengths_in) {
  constexpr std::string_view op = "copy_positions";
  check_cache(op, cache);
  const int64_t n = from_in.numel(), S = cache.size(0), C = cache.size(2);
  const Tensor from = index_vector(op, "from", from_in, n, cache);
  const Tensor to = index_vector(op, "to", to_in, n, cache);
  const Tensor lengths = index_vector(op, "lengths", lengths_in, n, cache);
  const int64_t es = static_cast<int64_t>(dtype_size(cache.dtype()));
  const Tensor from_host = on_host(from), to_host = on_host(to), lengths_host = on_host(lengths);
  const int32_t* f = from_host.data<int32_t>();
  const int32_t* t = to_host.data<int32_t>();
  const int32_t* l = lengths_host.data<int32_t>();
  std::set<int32_t> sources(f, f + n), targets;
  for (int64_t i = 0; i < n; ++i) {
    ATTEND_CHECK(f[i] >= 0 && f[i] < S && t[i] >= 0 && t[i] < S,
                 "{}: copy {} -> {} outside the {} slots", op, f[i], t[i], S);
    ATTEND_CHECK(l[i] >= 0 && l[i] <= C, "{}: length {} outside the capacity {}", op, l[i], C);
    ATTEND_CHECK(!sources.count(t[i]) && targets.insert(t[i]).second,
                 "{}: slot {} is written twice or both read and written", op, t[i]);
  }
  auto on_cpu = [&] {
    cpu::copy_positions(static_cast<char*>(cache.raw_data()), f, t, l, n, cache.size(1), C,
                        cache.size(3) * es);
  };
  dispatch(op, cache,
           {.cpu_f32 = on_cpu,
            .cpu_f64 = on_cpu,
            .cpu_bf16 = on_cpu,
            .cuda_f32 = ATTEND_ON_CUDA([&] {
              cuda::copy_positions(queue(cache), cache.raw_data(), from.data<int32_t>(),
                                   to.data<int32_t>(), lengths.data<int32_t>(), n, cache.size(1), C,
                                   cache.size(3), es);
            })});
}

namespace {

// top_k and top_k_logsumexp: one validation, one allocation, the kernel with or without the
// row's log sum exp.
TopKLse top_k_rows(std::string_view op, const Tensor& x_in, int64_t k,
                   const std::vector<int32_t>& banned, const Tensor& row_banned_in, bool with_lse) {
  check_dim(op, "x", x_in, 2);
  ATTEND_CHECK(k >= 1, "{}: k must be >= 1, got {}", op, k);
  const int64_t n = x_in.size(0), V = x_in.size(1);
  ATTEND_CHECK(!with_lse || V >= 1, "{}: x must have columns, got {}", op, x_in.str());
  const Tensor x = x_in.contiguous();
  Tensor row_banned;
  if (row_banned_in.defined()) row_banned = index_vector(op, "row_banned", row_banned_in, n, x);
  const Device dev = x.device();
  TopKLse out{{Tensor::empty({n, k}, DType::kF32, dev), Tensor::empty({n, k}, DType::kI32, dev),
               Tensor::empty({n}, DType::kI32, dev)},
              with_lse ? Tensor::empty({n}, DType::kF32, dev) : Tensor()};
  const int32_t* rb = row_banned.defined() ? row_banned.data<int32_t>() : nullptr;
  const auto nb = static_cast<int64_t>(banned.size());
  dispatch(op, x,
           {.cpu_f32 =
                [&] {
                  if (with_lse)
                    cpu::top_k_logsumexp(x.data<float>(), n, V, k, banned.data(), nb, rb,
                                         out.top.values.data<float>(),
                                         out.top.indices.data<int32_t>(),
                                         out.top.counts.data<int32_t>(), out.lse.data<float>());
                  else
                    cpu::top_k(x.data<float>(), n, V, k, banned.data(), nb, rb,
                               out.top.values.data<float>(), out.top.indices.data<int32_t>(),
                               out.top.counts.data<int32_t>());
                },
            .cuda_f32 = ATTEND_ON_CUDA([&] {
              const Tensor banned_dev =
                  nb > 0 ? Tensor::from_vector<int32_t>(banned, {nb}).to(dev) : Tensor();
              cuda::top_k(
                  queue(x), x.data<float>(), n, V, k, nb > 0 ? banned_dev.data<int32_t>() : nullptr,
                  nb, rb, out.top.values.data<float>(), out.top.indices.data<int32_t>(),
                  out.top.counts.data<int32_t>(), with_lse ? out.lse.data<float>() : nullptr);
            })});
  return out;
}

}  // namespace

TopK top_k(const Tensor& x, int64_t k, const std::vector<int32_t>& banned,
           const Tensor& row_banned) {
  return top_k_rows("top_k", x, k, banned, row_banned, false).top;
}

TopKLse top_k_logsumexp(const Tensor& x, int64_t k, const std::vector<int32_t>& banned,
                        const Tensor& row_banned) {
  return top_k_rows("top_k_logsumexp", x, k, banned, row_banned, true);
}

Tensor sample(const Tensor& x_in, const SampleRows& s, const std::vector<int32_t>& banned,
              const Tensor& row_banned_in) {
  constexpr std::string_view op = "sample";
  check_dim(op, "x", x_in, 2);
  const Tensor x = x_in.contiguous();
  const int64_t n = x.size(0), V = x.size(1), m = s.rows.numel();
  const Tensor rows = index_vector(op, "rows", s.rows, m, x);
  const Tensor top_k = index_vector(op, "top_k", s.top_k, m, x);
  auto per_row = [&](const char* arg, const Tensor& t, DType dtype) {
    check_dtype(op, arg, t, dtype);
    check_same_device(op, t, x);
    ATTEND_CHECK(t.dim() == 1 && t.size(0) == m, "{}: {} must have shape [{}], got {}", op, arg,
                 m, shape_str(t.shape()));
    return t.contiguous();
  };
  const Tensor temperature = per_row("temperature", s.temperature, DType::kF64);
  const Tensor top_p = per_row("top_p", s.top_p, DType::kF64);
  const Tensor uniform = per_row("uniform", s.uniform, DType::kF32);
  Tensor row_banned;
  if (row_banned_in.defined()) row_banned = index_vector(op, "row_banned", row_banned_in, n, x);
  Tensor out = Tensor::empty({m}, DType::kI32, x.device());
  dispatch(op, x, {.cpu_f32 = [&] {
             const int32_t* r = rows.data<int32_t>();
             const double* t = temperature.data<double>();
             const double* p = top_p.data<double>();
             for (int64_t i = 0; i < m; ++i) {
               ATTEND_CHECK(r[i] >= 0 && r[i] < n, "{}: rows[{}] = {} outside [0, {})", op, i,
                            r[i], n);
               ATTEND_CHECK(t[i] > 0 && p[i] > 0 && p[i] <= 1,
                            "{}: row {}: temperature {} must be > 0 and top_p {} in (0, 1]", op,
                            i, t[i], p[i]);
             }
             cpu::sample(x.data<float>(), V, r, m, banned.data(),
                         static_cast<int64_t>(banned.size()),
                         row_banned.defined() ? row_banned.data<int32_t>() : nullptr, t,
                         top_k.data<int32_t>(), p, uniform.data<float>(), out.data<int32_t>());
             for (int64_t i = 0; i < m; ++i)
               ATTEND_CHECK(out.data<int32_t>()[i] >= 0,
                            "{}: row {} may emit no token (every one of its {} is banned)", op,
                            r[i], V);
           }});
  return out;
}

Tensor pick(const Tensor& x_in, const Tensor& rows_in, const Tensor& cols_in) {
  constexpr std::string_view op = "pick";
  check_dim(op, "x", x_in, 2);
  const Tensor x = x_in.contiguous();
  const int64_t m = rows_in.numel();
  const Tensor rows = index_vector(op, "rows", rows_in, m, x);
  const Tensor cols = index_vector(op, "cols", cols_in, m, x);
  Tensor out = Tensor::empty({m}, DType::kF32, x.device());
  const Tensor rows_host = on_host(rows), cols_host = on_host(cols);
  const int32_t* r = rows_host.data<int32_t>();
  const int32_t* c = cols_host.data<int32_t>();
  for (int64_t i = 0; i < m; ++i)
    ATTEND_CHECK(r[i] >= 0 && r[i] < x.size(0) && c[i] >= 0 && c[i] < x.size(1),
                 "{}: ({}, {}) outside x {}", op, r[i], c[i], shape_str(x.shape()));
  dispatch(op, x,
           {.cpu_f32 = [&] { cpu::pick(x.data<float>(), x.size(1), r, c, m, out.data<float>()); },
            .cuda_f32 = ATTEND_ON_CUDA([&] {
              cuda::pick(queue(x), x.data<float>(), x.size(1), rows.data<int32_t>(),
                         cols.data<int32_t>(), m, out.data<float>());
            })});
  return out;
}

Tensor iota(const Shape& shape, Device device) {
  constexpr std::string_view op = "iota";
  ATTEND_CHECK(!shape.empty(), "{}: expected at least one dimension", op);
  Tensor out = Tensor::empty(shape, DType::kI32, device);
  dispatch(op, out,
           {.cpu_i32 = [&] { cpu::iota(out.data<int32_t>(), rows_of(out), cols_of(out)); },
            .cuda_i32 = ATTEND_ON_CUDA(
                [&] { cuda::iota(queue(out), out.data<int32_t>(), rows_of(out), cols_of(out)); })});
  return out;
}

Tensor add_index(const Tensor& x_in, int32_t k) {
  constexpr std::string_view op = "add_index";
  check_dtype(op, "x", x_in, DType::kI32);
  const Tensor x = x_in.contiguous();
  Tensor out = Tensor::empty(x.shape(), DType::kI32, x.device());
  dispatch(
      op, x,
      {.cpu_i32 = [&] { cpu::add_index(x.data<int32_t>(), k, out.data<int32_t>(), x.numel()); },
       .cuda_i32 = ATTEND_ON_CUDA([&] {
         cuda::add_index(queue(x), x.data<int32_t>(), k, out.data<int32_t>(), x.numel());
       })});
  return out;
}

}  // namespace attend::ops
