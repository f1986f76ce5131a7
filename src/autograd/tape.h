// The backward scheme: Variables (a value and its gradient) and a Tape of coarse-op backward
// closures recorded during a forward pass under a TapeScope; Tape::backward replays them in
// reverse. Model code is written once, forward; backward comes from the tape.
//
// Gradient-accumulation rule:
//  * Parameters (leaf Variables whose grad was allocated by zero_grad()) accumulate with +=,
//    so several micro-batches before one optimizer step sum their gradients for free.
//  * An activation's first gradient is moved in (=, no copy). When a value feeds several ops
//    (fan-out, e.g. a residual), later gradients are added out of place (the first may alias a
//    tensor owned by another Variable).
//  * A leaf without an allocated grad (e.g. a gradcheck input) gets a copy, then +=.
//  * A leaf's gradient can live in memory the caller owns (set_grad: e.g. a view into one flat
//    buffer holding every parameter's gradient, which data-parallel training reduces at once).
//
// Gradient-ready hooks: while recording, the tape counts how many backward closures will add
// into each leaf. During Tape::backward, when a leaf's last contribution has been added, its
// on_grad_ready hook runs (once per backward), so a caller can start reducing that gradient while
// the rest of the backward pass still runs.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/tensor.h"

namespace attend::ag {

struct Node {
  Tensor value;
  Tensor grad;
  bool requires_grad = false;
  bool is_leaf = true;
  std::string name;
  std::function<void()> on_grad_ready;  // leaves only; see the header comment
};

class Variable {
 public:
  Variable() = default;
  explicit Variable(Tensor value, bool requires_grad = false, std::string name = {});

  bool defined() const { return n_ != nullptr; }
  const Tensor& value() const { return n_->value; }
  Tensor& mutable_value() const { return n_->value; }
  const Tensor& grad() const { return n_->grad; }
  bool requires_grad() const { return n_ && n_->requires_grad; }
  const std::string& name() const { return n_->name; }
  const Shape& shape() const { return n_->value.shape(); }
  /// Allocates the gradient as zeros (heap memory) or zeroes it in place.
  void zero_grad() const;
  /// Drops the gradient.
  void clear_grad() const { n_->grad = Tensor(); }
  /// Makes `storage` (same shape and dtype as the value) this leaf's gradient: backward adds
  /// into it in place. Used to place every parameter's gradient in one flat buffer.
  void set_grad(Tensor storage) const;
  /// Runs `hook` whenever a backward pass has added this leaf's last gradient contribution
  /// (null: none).
  void set_grad_ready_hook(std::function<void()> hook) const;
  Node* node() const { return n_.get(); }

  /// The result of an op: not a leaf; requires_grad when any input does.
  static Variable from_op(Tensor value, bool requires_grad);

 private:
  std::shared_ptr<Node> n_;
};

/// Adds g into v's gradient following the rule above (no-op when v does not require grad).
void accumulate_grad(const Variable& v, Tensor g);

class Tape {
 public:
  void push(std::function<void()> backward) { entries_.push_back(std::move(backward)); }
  /// Seeds root's gradient (default: 1 for a one-element root) and runs the recorded backward
  /// closures newest first, releasing each after it ran; leaves' gradient-ready hooks run as
  /// their gradients complete. The tape is empty afterwards.
  void backward(const Variable& root, Tensor seed = {});
  void clear() {
    entries_.clear();
    pending_.clear();
  }
  size_t size() const { return entries_.size(); }

  /// Recording: one more backward contribution will reach leaf `n`.
  void expect_grad(Node* n) { ++pending_[n]; }
  /// Backward: a contribution reached leaf `n`; runs its hook when it was the last one.
  void grad_arrived(Node* n);

 private:
  std::vector<std::function<void()>> entries_;
  std::unordered_map<Node*, int64_t> pending_;  // leaf -> contributions still to come
};

/// While alive, ops on this thread record into `tape` (nullptr: no recording, i.e. inference).
class TapeScope {
 public:
  explicit TapeScope(Tape* tape);
  ~TapeScope();
  TapeScope(const TapeScope&) = delete;
  TapeScope& operator=(const TapeScope&) = delete;

 private:
  Tape* previous_;
};

Tape* current_tape();

/// True when a tape is recording and any of the inputs requires a gradient.
bool should_record(std::initializer_list<const Variable*> inputs);

}  // namespace attend::ag
