// gradcheck implementation.
#include "autograd/gradcheck.h"

#include <cmath>
#include <sstream>

#include "core/rng.h"

namespace attend::ag {
namespace {

double project(const Tensor& y, const std::vector<double>& w) {
  const Tensor y64 = y.to(DType::kF64).contiguous();
  const double* p = y64.data<double>();
  double acc = 0.0;
  for (int64_t i = 0; i < y64.numel(); ++i) acc += p[i] * w[static_cast<size_t>(i)];
  return acc;
}

}  // namespace

GradcheckResult gradcheck(const DiffFn& f, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& opt) {
  for (const Tensor& t : inputs)
    ATTEND_CHECK(t.dtype() == DType::kF64, "gradcheck: inputs must be f64, got {}", t.str());

  // Analytic gradients through the tape.
  std::vector<Variable> vars;
  for (const Tensor& t : inputs) vars.emplace_back(t.clone(), true);
  Tape tape;
  Variable y;
  {
    TapeScope scope(&tape);
    y = f(vars);
  }
  std::vector<double> w(static_cast<size_t>(y.value().numel()));
  for (size_t i = 0; i < w.size(); ++i) w[i] = philox_normal(opt.seed, 7, i);
  tape.backward(y, Tensor::from_vector(w, y.value().shape()));

  GradcheckResult res;
  std::ostringstream report;
  for (size_t k = 0; k < inputs.size(); ++k) {
    const Tensor analytic =
        vars[k].grad().defined() ? vars[k].grad().contiguous() : Tensor::zeros(inputs[k].shape(), DType::kF64);
    Tensor x = inputs[k].clone();
    double* px = x.data<double>();
    bool reported = false;
    for (int64_t i = 0; i < x.numel(); ++i) {
      const double orig = px[i];
      auto eval = [&](double v) {
        px[i] = v;
        std::vector<Variable> in;
        for (size_t j = 0; j < inputs.size(); ++j)
          in.emplace_back(j == k ? x : inputs[j], false);
        return project(f(in).value(), w);
      };
      const double numeric = (eval(orig + opt.eps) - eval(orig - opt.eps)) / (2 * opt.eps);
      px[i] = orig;
      const double a = analytic.data<double>()[i];
      const double err = std::abs(a - numeric);
      res.max_abs_error = std::max(res.max_abs_error, err);
      if (err > opt.atol + opt.rtol * std::abs(numeric)) {
        res.ok = false;
        if (!reported) {
          report << "input " << k << " element " << i << ": analytic " << a << " numeric "
                 << numeric << "\n";
          reported = true;
        }
      }
    }
  }
  res.report = report.str();
  return res;
}

}  // namespace attend::ag
