// Ops: label-smoothed cross-entropy and its backward. Validation, allocation and the (device,
// dtype) dispatch; declared in ops.h.
#include <cmath>
#include <vector>

#include "ops/dispatch.h"

namespace attend::ops {
using namespace detail;

CrossEntropyOut cross_entropy(const Tensor& logits_in, const Tensor& targets_in,
                              const CrossEntropyConfig& config, Reduction reduction) {
  constexpr std::string_view op = "cross_entropy";
  check_float(op, "logits", logits_in);
  check_dim(op, "logits", logits_in, 2);
  check_dtype(op, "targets", targets_in, DType::kI32);
  check_same_device(op, targets_in, logits_in);
  ATTEND_CHECK(targets_in.dim() == 1 && targets_in.size(0) == logits_in.size(0),
               "cross_entropy: targets {} do not match logits {}", shape_str(targets_in.shape()),
               shape_str(logits_in.shape()));
  ATTEND_CHECK(config.label_smoothing >= 0.0 && config.label_smoothing < 1.0,
               "cross_entropy: label_smoothing must be in [0, 1), got {}", config.label_smoothing);
  const int64_t N = logits_in.size(0), V = logits_in.size(1);
  const Tensor logits = logits_in.contiguous(), targets = targets_in.contiguous();
  CrossEntropyOut out;
  out.lse = Tensor::empty({N}, logits.dtype(), logits.device());
  Tensor per_row = Tensor::empty({N}, logits.dtype(), logits.device());
  out.loss = Tensor::empty({}, logits.dtype(), logits.device());
  auto check_target = [&](int32_t target, int64_t i) {
    ATTEND_CHECK(target >= 0 && target < V,
                 "cross_entropy: target {} at position {} outside [0, {})", target, i, V);
  };
  auto set_tokens = [&](int64_t tokens) {
    out.tokens = tokens;
    out.normaliser =
        reduction == Reduction::kMean ? static_cast<double>(std::max<int64_t>(tokens, 1)) : 1.0;
  };
  // On the CPU: the targets are checked and counted where they are, then the kernel runs.
  const int32_t* t = nullptr;
  auto count_targets = [&] {
    t = targets.data<int32_t>();
    int64_t tokens = 0;
    for (int64_t i = 0; i < N; ++i) {
      if (t[i] == config.ignore_index) continue;
      check_target(t[i], i);
      ++tokens;
    }
    set_tokens(tokens);
  };
  dispatch(op, logits,
           {.cpu_f32 =
                [&] {
                  count_targets();
                  cpu::cross_entropy(logits.data<float>(), t, per_row.data<float>(),
                                     out.lse.data<float>(), N, V, config);
                  const double total = cpu::sum(per_row.data<float>(), N);
                  out.loss.data<float>()[0] = static_cast<float>(total / out.normaliser);
                },
            .cpu_f64 =
                [&] {
                  count_targets();
                  ref::cross_entropy(logits.data<double>(), t, per_row.data<double>(),
                                     out.lse.data<double>(), N, V, config);
                  double total = 0;
                  ref::sum_last(per_row.data<double>(), &total, 1, N);
                  out.loss.data<double>()[0] = total / out.normaliser;
                },
            .cuda_f32 = ATTEND_ON_CUDA([&] {
              // The targets are checked and counted on the device; the count comes back (the
              // normaliser of kMean and CrossEntropyOut::tokens are host values).
              Tensor counts = device_reports(logits, 2);
              cuda::cross_entropy(queue(logits), logits.data<float>(), targets.data<int32_t>(),
                                  per_row.data<float>(), out.lse.data<float>(), N, V, config,
                                  counts.data<int32_t>());
              const std::vector<int32_t> c = read_reports(counts);
              if (c[1] != 0) check_target(index_at(targets, c[1] - 1), c[1] - 1);
              set_tokens(c[0]);
              cuda::sum_last(queue(logits), per_row.data<float>(), out.loss.data<float>(), 1, N);
              cuda::affine(queue(logits), out.loss.data<float>(), out.loss.data<float>(), 1,
                           static_cast<float>(1.0 / out.normaliser), 0.f);
            })});
  return out;
}

Tensor cross_entropy_backward(double dloss, const Tensor& logits_in, const Tensor& targets_in,
                              const CrossEntropyOut& saved, const CrossEntropyConfig& config) {
  constexpr std::string_view op = "cross_entropy_backward";
  check_float(op, "logits", logits_in);
  const int64_t N = logits_in.size(0), V = logits_in.size(1);
  const Tensor logits = logits_in.contiguous(), targets = targets_in.contiguous();
  Tensor d = like(logits);
  const double scale = dloss / saved.normaliser;
  dispatch(op, logits,
           {.cpu_f32 =
                [&] {
                  cpu::cross_entropy_backward(logits.data<float>(), targets.data<int32_t>(),
                                              saved.lse.data<float>(), d.data<float>(), N, V,
                                              config, static_cast<float>(scale));
                },
            .cpu_f64 =
                [&] {
                  ref::cross_entropy_backward(logits.data<double>(), targets.data<int32_t>(),
                                              saved.lse.data<double>(), d.data<double>(), N, V,
                                              config, scale);
                },
            .cuda_f32 = ATTEND_ON_CUDA([&] {
              cuda::cross_entropy_backward(queue(logits), logits.data<float>(),
                                           targets.data<int32_t>(), saved.lse.data<float>(),
                                           d.data<float>(), N, V, config,
                                           static_cast<float>(scale));
            })});
  return d;
}

}  // namespace attend::ops
