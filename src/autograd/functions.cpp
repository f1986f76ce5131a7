// Differentiable op wrappers (see functions.h). Each closure captures the Variables and the
// tensors its backward needs -- nothing more (e.g. layer norm keeps sum, mean and rstd).
#include "autograd/functions.h"

namespace attend::ag {
namespace {

// The one shape of a recorded op: `value` becomes a Variable that requires a gradient when any
// of `inputs` does, and then the tape runs backward(dy, y) once the result has a gradient dy
// (y: the result's value, for the ops whose derivative is written in terms of it).
template <typename Backward>
Variable record(Tensor value, std::initializer_list<const Variable*> inputs, Backward backward) {
  Variable out = Variable::from_op(std::move(value), should_record(inputs));
  if (out.requires_grad())
    current_tape()->push([out, backward = std::move(backward)] {
      if (out.grad().defined()) backward(out.grad(), out.value());
    });
  return out;
}

}  // namespace

Variable matmul(const Variable& a, const Variable& b, bool ta, bool tb) {
  return record(ops::matmul(a.value(), b.value(), ta, tb), {&a, &b},
                [a, b, ta, tb](const Tensor& dy, const Tensor&) {
                  ops::MatmulGrads g = ops::matmul_backward(dy, a.value(), b.value(), ta, tb);
                  accumulate_grad(a, std::move(g.da));
                  accumulate_grad(b, std::move(g.db));
                });
}

Variable linear(const Variable& x, const Variable& w, const Variable& bias) {
  const Tensor b = bias.defined() ? bias.value() : Tensor();
  return record(ops::linear(x.value(), w.value(), b), {&x, &w, &bias},
                [x, w, bias](const Tensor& dy, const Tensor&) {
                  ops::LinearGrads g =
                      ops::linear_backward(dy, x.value(), w.value(), bias.defined());
                  accumulate_grad(x, std::move(g.dx));
                  accumulate_grad(w, std::move(g.dw));
                  if (bias.defined()) accumulate_grad(bias, std::move(g.dbias));
                });
}

Variable add(const Variable& a, const Variable& b) {
  return record(ops::add(a.value(), b.value()), {&a, &b}, [a, b](const Tensor& dy, const Tensor&) {
    accumulate_grad(a, dy);
    accumulate_grad(b, dy);
  });
}

Variable sub(const Variable& a, const Variable& b) {
  return record(ops::sub(a.value(), b.value()), {&a, &b}, [a, b](const Tensor& dy, const Tensor&) {
    accumulate_grad(a, dy);
    if (b.requires_grad()) accumulate_grad(b, ops::affine(dy, -1.0));
  });
}

Variable mul(const Variable& a, const Variable& b) {
  return record(ops::mul(a.value(), b.value()), {&a, &b}, [a, b](const Tensor& dy, const Tensor&) {
    if (a.requires_grad()) accumulate_grad(a, ops::mul(dy, b.value()));
    if (b.requires_grad()) accumulate_grad(b, ops::mul(dy, a.value()));
  });
}

Variable cast(const Variable& x, DType dtype) {
  if (x.value().dtype() == dtype) return x;
  return record(ops::cast(x.value(), dtype), {&x}, [x](const Tensor& dy, const Tensor&) {
    accumulate_grad(x, ops::cast(dy, x.value().dtype()));
  });
}

Variable affine(const Variable& x, double alpha, double beta) {
  return record(
      ops::affine(x.value(), alpha, beta), {&x},
      [x, alpha](const Tensor& dy, const Tensor&) { accumulate_grad(x, ops::affine(dy, alpha)); });
}

Variable exp(const Variable& x) {
  return record(ops::exp(x.value()), {&x},
                [x](const Tensor& dy, const Tensor& y) { accumulate_grad(x, ops::mul(dy, y)); });
}

Variable log(const Variable& x) {
  return record(ops::log(x.value()), {&x}, [x](const Tensor& dy, const Tensor& y) {
    // d log x = dy / x = dy * exp(-log x)
    accumulate_grad(x, ops::mul(dy, ops::exp(ops::affine(y, -1.0))));
  });
}

Variable rsqrt(const Variable& x) {
  return record(ops::rsqrt(x.value()), {&x}, [x](const Tensor& dy, const Tensor& y) {
    // d x^-1/2 = -1/2 x^-3/2 = -1/2 y^3
    accumulate_grad(x, ops::mul(dy, ops::affine(ops::mul(ops::mul(y, y), y), -0.5)));
  });
}

Variable bias_add(const Variable& x, const Variable& bias) {
  return record(ops::bias_add(x.value(), bias.value()), {&x, &bias},
                [x, bias](const Tensor& dy, const Tensor&) {
                  accumulate_grad(x, dy);
                  if (bias.requires_grad()) accumulate_grad(bias, ops::sum_rows(dy));
                });
}

Variable relu(const Variable& x) {
  return record(ops::relu(x.value()), {&x}, [x](const Tensor& dy, const Tensor&) {
    accumulate_grad(x, ops::relu_backward(x.value(), dy));
  });
}

Variable gelu(const Variable& x) {
  return record(ops::gelu(x.value()), {&x}, [x](const Tensor& dy, const Tensor&) {
    accumulate_grad(x, ops::gelu_backward(x.value(), dy));
  });
}

Variable gelu_tanh(const Variable& x) {
  return record(ops::gelu_tanh(x.value()), {&x}, [x](const Tensor& dy, const Tensor&) {
    accumulate_grad(x, ops::gelu_tanh_backward(x.value(), dy));
  });
}

Variable silu(const Variable& x) {
  return record(ops::silu(x.value()), {&x}, [x](const Tensor& dy, const Tensor&) {
    accumulate_grad(x, ops::silu_backward(x.value(), dy));
  });
}

Variable dropout(const Variable& x, double p, uint64_t seed, uint64_t stream) {
  if (p == 0.0) return x;
  return record(ops::dropout(x.value(), p, seed, stream), {&x},
                [x, p, seed, stream](const Tensor& dy, const Tensor&) {
                  accumulate_grad(x, ops::dropout_backward(dy, p, seed, stream));
                });
}

Variable sum(const Variable& x) {
  return record(ops::sum(x.value()), {&x}, [x](const Tensor& dy, const Tensor&) {
    accumulate_grad(x, ops::broadcast_scalar(dy, x.value().shape()));
  });
}

Variable sum_last(const Variable& x) {
  return record(ops::sum_last(x.value()), {&x}, [x](const Tensor& dy, const Tensor&) {
    accumulate_grad(x, ops::broadcast_last(dy, x.value().size(-1)));
  });
}

Variable broadcast_last(const Variable& x, int64_t cols) {
  return record(ops::broadcast_last(x.value(), cols), {&x},
                [x](const Tensor& dy, const Tensor&) { accumulate_grad(x, ops::sum_last(dy)); });
}

Variable softmax(const Variable& x, const ops::AttentionMask& mask) {
  return record(ops::softmax(x.value(), mask), {&x}, [x](const Tensor& dy, const Tensor& y) {
    accumulate_grad(x, ops::softmax_backward(y, dy));
  });
}

Variable log_softmax(const Variable& x) {
  return record(ops::log_softmax(x.value()), {&x}, [x](const Tensor& dy, const Tensor& y) {
    accumulate_grad(x, ops::log_softmax_backward(y, dy));
  });
}
namespace {
// layer_norm and rms_norm from the op's saved output (beta undefined for RMSNorm).
Variable norm(ops::LayerNormOut saved, const Variable& x, const Variable& residual,
              const Variable& gamma, const Variable& beta, Variable* sum_out) {
  const bool rec = should_record({&x, &residual, &gamma, &beta});
  Variable out = Variable::from_op(saved.y, rec);
  Variable sum_var;
  if (sum_out) {
    // The residual stream as its own Variable: its gradient (from later uses) joins the one
    // flowing back through the norm.
    sum_var = Variable::from_op(saved.sum, rec);
    *sum_out = sum_var;
  }
  if (rec) {
    saved.y = Tensor();  // backward does not need y
    current_tape()->push([x, residual, gamma, beta, out, sum_var, saved] {
      Tensor dsum;
      if (out.grad().defined()) {
        ops::LayerNormGrads g = ops::layer_norm_backward(out.grad(), saved, gamma.value());
        accumulate_grad(gamma, std::move(g.dgamma));
        if (beta.defined()) accumulate_grad(beta, std::move(g.dbeta));
        dsum = std::move(g.dx);
      }
      if (sum_var.defined() && sum_var.grad().defined())
        dsum = dsum.defined() ? ops::add(dsum, sum_var.grad()) : sum_var.grad();
      if (!dsum.defined()) return;
      accumulate_grad(x, dsum);
      if (residual.defined()) accumulate_grad(residual, dsum);
    });
  }
  return out;
}
}  // namespace

Variable layer_norm(const Variable& x, const Variable& residual, const Variable& gamma,
                    const Variable& beta, double eps, Variable* sum_out) {
  const Tensor r = residual.defined() ? residual.value() : Tensor();
  return norm(ops::layer_norm(x.value(), r, gamma.value(), beta.value(), eps), x, residual, gamma,
              beta, sum_out);
}

Variable rms_norm(const Variable& x, const Variable& residual, const Variable& gamma, double eps,
                  Variable* sum_out) {
  const Tensor r = residual.defined() ? residual.value() : Tensor();
  return norm(ops::rms_norm(x.value(), r, gamma.value(), eps), x, residual, gamma, Variable(),
              sum_out);
}

Variable embedding(const Tensor& ids, const Variable& weight) {
  return record(ops::embedding(ids, weight.value()), {&weight},
                [ids, weight](const Tensor& dy, const Tensor&) {
                  Node* n = weight.node();
                  if (n->is_leaf && n->grad.defined()) {
                    ops::embedding_backward(ids, dy, n->grad);  // sparse: only rows in ids change
                    return;
                  }
                  Tensor dense = Tensor::zeros(weight.value().shape(), weight.value().dtype(),
                                               weight.value().device());
                  ops::embedding_backward(ids, dy, dense);
                  accumulate_grad(weight, std::move(dense));
                });
}

Variable attention(const Variable& q, const Variable& k, const Variable& v,
                   const ops::AttentionMask& mask, double scale, const Variable& bias) {
  const Tensor b = bias.defined() ? bias.value() : Tensor();
  ops::AttentionOut saved = ops::attention(q.value(), k.value(), v.value(), mask, scale, {}, b);
  Tensor value = saved.out;
  return record(std::move(value), {&q, &k, &v, &bias},
                [q, k, v, bias, saved, mask, scale](const Tensor& dy, const Tensor&) {
                  ops::AttentionGrads g =
                      ops::attention_backward(dy, q.value(), k.value(), v.value(), saved, mask,
                                              scale, bias.defined() ? bias.value() : Tensor());
                  accumulate_grad(q, std::move(g.dq));
                  accumulate_grad(k, std::move(g.dk));
                  accumulate_grad(v, std::move(g.dv));
                  if (bias.defined()) accumulate_grad(bias, std::move(g.dbias));
                });
}

Variable attention_reference(const Variable& q, const Variable& k, const Variable& v,
                             const ops::AttentionMask& mask, double scale, const Variable& bias) {
  const Tensor b = bias.defined() ? bias.value() : Tensor();
  ops::ReferenceAttentionOut res =
      ops::attention_reference(q.value(), k.value(), v.value(), mask, scale, b);
  return record(std::move(res.out), {&q, &k, &v, &bias},
                [q, k, v, bias, probs = std::move(res.probs), scale, offset = mask.query_offset](
                    const Tensor& dy, const Tensor&) {
                  ops::AttentionGrads g = ops::attention_reference_backward(
                      dy, q.value(), k.value(), v.value(), probs, scale,
                      bias.defined() ? bias.value() : Tensor(), offset);
                  accumulate_grad(q, std::move(g.dq));
                  accumulate_grad(k, std::move(g.dk));
                  accumulate_grad(v, std::move(g.dv));
                  if (bias.defined()) accumulate_grad(bias, std::move(g.dbias));
                });
}

Variable cross_entropy(const Variable& logits, const Tensor& targets,
                       const ops::CrossEntropyConfig& config, ops::Reduction reduction) {
  ops::CrossEntropyOut saved = ops::cross_entropy(logits.value(), targets, config, reduction);
  Tensor loss = saved.loss;
  return record(std::move(loss), {&logits},
                [logits, targets, saved, config](const Tensor& dy, const Tensor&) {
                  accumulate_grad(logits, ops::cross_entropy_backward(dy.item(), logits.value(),
                                                                      targets, saved, config));
                });
}

Variable reshape(const Variable& x, const Shape& shape) {
  return record(x.value().reshape(shape), {&x}, [x](const Tensor& dy, const Tensor&) {
    accumulate_grad(x, dy.reshape(x.value().shape()));
  });
}

Variable transpose(const Variable& x, int64_t d0, int64_t d1) {
  return record(x.value().transpose(d0, d1), {&x}, [x, d0, d1](const Tensor& dy, const Tensor&) {
    accumulate_grad(x, dy.transpose(d0, d1).contiguous());
  });
}

}  // namespace attend::ag
