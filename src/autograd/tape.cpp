// Tape, Variable and the gradient-accumulation rule.
#include "autograd/tape.h"

#include "core/allocator.h"
#include "ops/ops.h"

namespace attend::ag {
namespace {
thread_local Tape* tls_tape = nullptr;
thread_local Tape* tls_backward = nullptr;  // the tape whose backward runs on this thread
}  // namespace

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

void Variable::set_grad(Tensor storage) const {
  ATTEND_CHECK(n_->is_leaf && storage.shape() == n_->value.shape() &&
                   storage.dtype() == n_->value.dtype() && storage.device() == n_->value.device(),
               "set_grad: '{}' needs a {} gradient like its value, got {}", n_->name,
               shape_str(n_->value.shape()), shape_str(storage.shape()));
  n_->grad = std::move(storage);
}

void Variable::set_grad_ready_hook(std::function<void()> hook) const {
  n_->on_grad_ready = std::move(hook);
}

void Tape::grad_arrived(Node* n) {
  const auto it = pending_.find(n);
  if (it == pending_.end() || --it->second > 0) return;
  pending_.erase(it);
  if (n->on_grad_ready) n->on_grad_ready();
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
    if (tls_backward) tls_backward->grad_arrived(n);
    return;
  }
  if (!n->grad.defined())
    n->grad = std::move(g);
  else
    n->grad = ops::add(n->grad, g);
}

void Tape::backward(const Variable& root, Tensor seed) {
  ATTEND_CHECK(root.defined() && root.requires_grad(),
               "backward: the root does not require a gradient (was the forward recorded?)");
  if (!seed.defined()) {
    ATTEND_CHECK(root.value().numel() == 1,
                 "backward: root {} is not a scalar; pass a seed gradient",
                 shape_str(root.value().shape()));
    seed = Tensor::full(root.value().shape(), 1.0, root.value().dtype()).to(root.value().device());
  }
  struct BackwardScope {  // grad_arrived reaches this tape while its closures run
    Tape* previous;
    explicit BackwardScope(Tape* t) : previous(tls_backward) { tls_backward = t; }
    ~BackwardScope() { tls_backward = previous; }
  } scope(this);
  accumulate_grad(root, std::move(seed));
  // Run newest first; pop each entry so that the tensors it saved are freed early.
  while (!entries_.empty()) {
    std::function<void()> fn = std::move(entries_.back());
    entries_.pop_back();
    fn();
  }
  // Every recorded contribution has arrived; a leaf still pending was counted by an op whose
  // backward added nothing to it (e.g. an input that got no gradient): its gradient is final now.
  auto rest = std::move(pending_);
  pending_.clear();
  for (auto& [n, count] : rest)
    if (n->on_grad_ready) n->on_grad_ready();
}

TapeScope::TapeScope(Tape* tape) : previous_(tls_tape) { tls_tape = tape; }
TapeScope::~TapeScope() { tls_tape = previous_; }

Tape* current_tape() { return tls_tape; }

bool should_record(std::initializer_list<const Variable*> inputs) {
  if (!tls_tape) return false;
  bool record = false;
  for (const Variable* v : inputs)
    if (v && v->defined() && v->requires_grad()) {
      record = true;
      if (v->node()->is_leaf) tls_tape->expect_grad(v->node());
    }
  return record;
}

}  // namespace attend::ag
