// Tape, Variable and the gradient-accumulation rule.
#include "autograd/tape.h"

#include "core/allocator.h"
#include "ops/ops.h"

namespace attend::ag {
namespace {
thread_local Tape* tls_tape = nullptr;
}

Variable::Variable(Tensor value, bool requires_grad, std::string name)
    : n_(std::make_shared<Node>()) {
  n_->value = std::move(value);
  n_->requires_grad = requires_grad;
  n_->name = std::move(name);
}

Variable Variable::from_op(Tensor value, bool requires_grad) {
  Variable v(std::move(value), requires_grad);
  v.n_->is_leaf = false;
  return v;
}

void Variable::zero_grad() const {
  if (!n_->requires_grad) return;
  if (n_->grad.defined() && n_->grad.shape() == n_->value.shape()) {
    n_->grad.zero_();
    return;
  }
  HeapScope heap;  // parameter gradients outlive the per-step arena
  n_->grad = Tensor::zeros(n_->value.shape(), n_->value.dtype(), n_->value.device());
}

void accumulate_grad(const Variable& v, Tensor g) {
  if (!v.requires_grad() || !g.defined()) return;
  Node* n = v.node();
  ATTEND_CHECK(g.shape() == n->value.shape(),
               "backward: gradient {} does not match value {} of '{}'", shape_str(g.shape()),
               shape_str(n->value.shape()), n->name);
  if (n->is_leaf) {
    if (!n->grad.defined()) {
      HeapScope heap;
      n->grad = g.clone();
    } else {
      ops::accumulate_(n->grad, g);
    }
    return;
  }
  if (!n->grad.defined()) n->grad = std::move(g);
  else n->grad = ops::add(n->grad, g);
}

void Tape::backward(const Variable& root, Tensor seed) {
  ATTEND_CHECK(root.defined() && root.requires_grad(),
               "backward: the root does not require a gradient (was the forward recorded?)");
  if (!seed.defined()) {
    ATTEND_CHECK(root.value().numel() == 1,
                 "backward: root {} is not a scalar; pass a seed gradient",
                 shape_str(root.value().shape()));
    seed = Tensor::full(root.value().shape(), 1.0, root.value().dtype());
  }
  accumulate_grad(root, std::move(seed));
  // Run newest first; pop each entry so that the tensors it saved are freed early.
  while (!entries_.empty()) {
    std::function<void()> fn = std::move(entries_.back());
    entries_.pop_back();
    fn();
  }
}

TapeScope::TapeScope(Tape* tape) : previous_(tls_tape) { tls_tape = tape; }
TapeScope::~TapeScope() { tls_tape = previous_; }

Tape* current_tape() { return tls_tape; }

bool should_record(std::initializer_list<const Variable*> inputs) {
  if (!tls_tape) return false;
  for (const Variable* v : inputs)
    if (v && v->defined() && v->requires_grad()) return true;
  return false;
}

}  // namespace attend::ag
