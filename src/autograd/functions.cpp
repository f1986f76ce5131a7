// Differentiable op wrappers (see functions.h). Each closure captures the Variables and the
// tensors its backward needs -- nothing more (e.g. layer norm keeps sum, mean and rstd).
#include "autograd/functions.h"

namespace attend::ag {

Variable matmul(const Variable& a, const Variable& b, bool ta, bool tb) {
  Variable out = Variable::from_op(ops::matmul(a.value(), b.value(), ta, tb), should_record({&a, &b}));
  if (out.requires_grad())
    current_tape()->push([a, b, out, ta, tb] {
      if (!out.grad().defined()) return;
      ops::MatmulGrads g = ops::matmul_backward(out.grad(), a.value(), b.value(), ta, tb);
      accumulate_grad(a, std::move(g.da));
      accumulate_grad(b, std::move(g.db));
    });
  return out;
}

Variable linear(const Variable& x, const Variable& w, const Variable& bias) {
  const Tensor b = bias.defined() ? bias.value() : Tensor();
  Variable out =
      Variable::from_op(ops::linear(x.value(), w.value(), b), should_record({&x, &w, &bias}));
  if (out.requires_grad())
    current_tape()->push([x, w, bias, out] {
      if (!out.grad().defined()) return;
      ops::LinearGrads g = ops::linear_backward(out.grad(), x.value(), w.value(), bias.defined());
      accumulate_grad(x, std::move(g.dx));
      accumulate_grad(w, std::move(g.dw));
      if (bias.defined()) accumulate_grad(bias, std::move(g.dbias));
    });
  return out;
}

Variable add(const Variable& a, const Variable& b) {
  Variable out = Variable::from_op(ops::add(a.value(), b.value()), should_record({&a, &b}));
  if (out.requires_grad())
    current_tape()->push([a, b, out] {
      if (!out.grad().defined()) return;
      accumulate_grad(a, out.grad());
      accumulate_grad(b, out.grad());
    });
  return out;
}

Variable sub(const Variable& a, const Variable& b) {
  Variable out = Variable::from_op(ops::sub(a.value(), b.value()), should_record({&a, &b}));
  if (out.requires_grad())
    current_tape()->push([a, b, out] {
      if (!out.grad().defined()) return;
      accumulate_grad(a, out.grad());
      if (b.requires_grad()) accumulate_grad(b, ops::affine(out.grad(), -1.0));
    });
  return out;
}

Variable mul(const Variable& a, const Variable& b) {
  Variable out = Variable::from_op(ops::mul(a.value(), b.value()), should_record({&a, &b}));
  if (out.requires_grad())
    current_tape()->push([a, b, out] {
      if (!out.grad().defined()) return;
      if (a.requires_grad()) accumulate_grad(a, ops::mul(out.grad(), b.value()));
      if (b.requires_grad()) accumulate_grad(b, ops::mul(out.grad(), a.value()));
    });
  return out;
}

Variable cast(const Variable& x, DType dtype) {
  if (x.value().dtype() == dtype) return x;
  Variable out = Variable::from_op(ops::cast(x.value(), dtype), should_record({&x}));
  if (out.requires_grad())
    current_tape()->push([x, out] {
      if (!out.grad().defined()) return;
      accumulate_grad(x, ops::cast(out.grad(), x.value().dtype()));
    });
  return out;
}

Variable affine(const Variable& x, double alpha, double beta) {
  Variable out = Variable::from_op(ops::affine(x.value(), alpha, beta), should_record({&x}));
  if (out.requires_grad())
    current_tape()->push([x, out, alpha] {
      if (!out.grad().defined()) return;
      accumulate_grad(x, ops::affine(out.grad(), alpha));
    });
  return out;
}

Variable exp(const Variable& x) {
  Variable out = Variable::from_op(ops::exp(x.value()), should_record({&x}));
  if (out.requires_grad())
    current_tape()->push([x, out] {
      if (!out.grad().defined()) return;
      accumulate_grad(x, ops::mul(out.grad(), out.value()));
    });
  return out;
}

Variable log(const Variable& x) {
  Variable out = Variable::from_op(ops::log(x.value()), should_record({&x}));
  if (out.requires_grad())
    current_tape()->push([x, out] {
      if (!out.grad().defined()) return;
      // d log x = dy / x = dy * exp(-log x)
      accumulate_grad(x, ops::mul(out.grad(), ops::exp(ops::affine(out.value(), -1.0))));
    });
  return out;
}

Variable rsqrt(const Variable& x) {
  Variable out = Variable::from_op(ops::rsqrt(x.value()), should_record({&x}));
  if (out.requires_grad())
    current_tape()->push([x, out] {
      if (!out.grad().defined()) return;
      // d x^-1/2 = -1/2 x^-3/2 = -1/2 y^3
      const Tensor& y = out.value();
      accumulate_grad(x, ops::mul(out.grad(), ops::affine(ops::mul(ops::mul(y, y), y), -0.5)));
    });
  return out;
}

Variable bias_add(const Variable& x, const Variable& bias) {
  Variable out = Variable::from_op(ops::bias_add(x.value(), bias.value()), should_record({&x, &bias}));
  if (out.requires_grad())
    current_tape()->push([x, bias, out] {
      if (!out.grad().defined()) return;
      accumulate_grad(x, out.grad());
      if (bias.requires_grad()) accumulate_grad(bias, ops::sum_rows(out.grad()));
    });
  return out;
}

Variable relu(const Variable& x) {
  Variable out = Variable::from_op(ops::relu(x.value()), should_record({&x}));
  if (out.requires_grad())
    current_tape()->push([x, out] {
      if (!out.grad().defined()) return;
      accumulate_grad(x, ops::relu_backward(x.value(), out.grad()));
    });
  return out;
}

Variable gelu(const Variable& x) {
  Variable out = Variable::from_op(ops::gelu(x.value()), should_record({&x}));
  if (out.requires_grad())
    current_tape()->push([x, out] {
      if (!out.grad().defined()) return;
      accumulate_grad(x, ops::gelu_backward(x.value(), out.grad()));
    });
  return out;
}

Variable dropout(const Variable& x, double p, uint64_t seed, uint64_t stream) {
  if (p == 0.0) return x;
  Variable out = Variable::from_op(ops::dropout(x.value(), p, seed, stream), should_record({&x}));
  if (out.requires_grad())
    current_tape()->push([x, out, p, seed, stream] {
      if (!out.grad().defined()) return;
      accumulate_grad(x, ops::dropout_backward(out.grad(), p, seed, stream));
    });
  return out;
}

Variable sum(const Variable& x) {
  Variable out = Variable::from_op(ops::sum(x.value()), should_record({&x}));
  if (out.requires_grad())
    current_tape()->push([x, out] {
      if (!out.grad().defined()) return;
      accumulate_grad(x, ops::broadcast_scalar(out.grad(), x.value().shape()));
    });
  return out;
}

Variable sum_last(const Variable& x) {
  Variable out = Variable::from_op(ops::sum_last(x.value()), should_record({&x}));
  if (out.requires_grad())
    current_tape()->push([x, out] {
      if (!out.grad().defined()) return;
      accumulate_grad(x, ops::broadcast_last(out.grad(), x.value().size(-1)));
    });
  return out;
}

Variable broadcast_last(const Variable& x, int64_t cols) {
  Variable out = Variable::from_op(ops::broadcast_last(x.value(), cols), should_record({&x}));
  if (out.requires_grad())
    current_tape()->push([x, out] {
      if (!out.grad().defined()) return;
      accumulate_grad(x, ops::sum_last(out.grad()));
    });
  return out;
}

Variable softmax(const Variable& x, const ops::AttentionMask& mask) {
  Variable out = Variable::from_op(ops::softmax(x.value(), mask), should_record({&x}));
  if (out.requires_grad())
    current_tape()->push([x, out] {
      if (!out.grad().defined()) return;
      accumulate_grad(x, ops::softmax_backward(out.value(), out.grad()));
    });
  return out;
}

Variable log_softmax(const Variable& x) {
  Variable out = Variable::from_op(ops::log_softmax(x.value()), should_record({&x}));
  if (out.requires_grad())
    current_tape()->push([x, out] {
      if (!out.grad().defined()) return;
      accumulate_grad(x, ops::log_softmax_backward(out.value(), out.grad()));
    });
  return out;
}

Variable layer_norm(const Variable& x, const Variable& residual, const Variable& gamma,
                    const Variable& beta, double eps, Variable* sum_out) {
  const Tensor r = residual.defined() ? residual.value() : Tensor();
  ops::LayerNormOut saved = ops::layer_norm(x.value(), r, gamma.value(), beta.value(), eps);
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
        accumulate_grad(beta, std::move(g.dbeta));
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

Variable embedding(const Tensor& ids, const Variable& weight) {
  Variable out = Variable::from_op(ops::embedding(ids, weight.value()), should_record({&weight}));
  if (out.requires_grad())
    current_tape()->push([ids, weight, out] {
      if (!out.grad().defined()) return;
      Node* n = weight.node();
      if (n->is_leaf && n->grad.defined()) {
        ops::embedding_backward(ids, out.grad(), n->grad);  // sparse: only rows in ids change
        return;
      }
      Tensor dense = Tensor::zeros(weight.value().shape(), weight.value().dtype());
      ops::embedding_backward(ids, out.grad(), dense);
      accumulate_grad(weight, std::move(dense));
    });
  return out;
}

Variable attention(const Variable& q, const Variable& k, const Variable& v,
                   const ops::AttentionMask& mask, double scale) {
  ops::AttentionOut saved = ops::attention(q.value(), k.value(), v.value(), mask, scale);
  Variable out = Variable::from_op(saved.out, should_record({&q, &k, &v}));
  if (out.requires_grad())
    current_tape()->push([q, k, v, out, saved, mask, scale] {
      if (!out.grad().defined()) return;
      ops::AttentionGrads g = ops::attention_backward(out.grad(), q.value(), k.value(), v.value(),
                                                      saved, mask, scale);
      accumulate_grad(q, std::move(g.dq));
      accumulate_grad(k, std::move(g.dk));
      accumulate_grad(v, std::move(g.dv));
    });
  return out;
}

Variable attention_reference(const Variable& q, const Variable& k, const Variable& v,
                             const ops::AttentionMask& mask, double scale) {
  ops::ReferenceAttentionOut res =
      ops::attention_reference(q.value(), k.value(), v.value(), mask, scale);
  Variable out = Variable::from_op(res.out, should_record({&q, &k, &v}));
  if (out.requires_grad()) {
    Tensor probs = res.probs;
    current_tape()->push([q, k, v, out, probs, scale] {
      if (!out.grad().defined()) return;
      ops::AttentionGrads g = ops::attention_reference_backward(out.grad(), q.value(), k.value(),
                                                                v.value(), probs, scale);
      accumulate_grad(q, std::move(g.dq));
      accumulate_grad(k, std::move(g.dk));
      accumulate_grad(v, std::move(g.dv));
    });
  }
  return out;
}

Variable cross_entropy(const Variable& logits, const Tensor& targets,
                       const ops::CrossEntropyConfig& config, ops::Reduction reduction) {
  ops::CrossEntropyOut saved = ops::cross_entropy(logits.value(), targets, config, reduction);
  Variable out = Variable::from_op(saved.loss, should_record({&logits}));
  if (out.requires_grad())
    current_tape()->push([logits, targets, out, saved, config] {
      if (!out.grad().defined()) return;
      accumulate_grad(logits, ops::cross_entropy_backward(out.grad().item(), logits.value(),
                                                          targets, saved, config));
    });
  return out;
}

Variable reshape(const Variable& x, const Shape& shape) {
  Variable out = Variable::from_op(x.value().reshape(shape), should_record({&x}));
  if (out.requires_grad())
    current_tape()->push([x, out] {
      if (!out.grad().defined()) return;
      accumulate_grad(x, out.grad().reshape(x.value().shape()));
    });
  return out;
}

Variable transpose(const Variable& x, int64_t d0, int64_t d1) {
  Variable out = Variable::from_op(x.value().transpose(d0, d1), should_record({&x}));
  if (out.requires_grad())
    current_tape()->push([x, out, d0, d1] {
      if (!out.grad().defined()) return;
      accumulate_grad(x, out.grad().transpose(d0, d1).contiguous());
    });
  return out;
}

}  // namespace attend::ag
