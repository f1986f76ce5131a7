// Differentiable versions of the ops: each computes the forward with ops:: and, when a tape is
// recording and an input requires a gradient, pushes a closure that runs the op's _backward.
// Integer inputs (ids, targets, masks) are plain Tensors: they never get gradients.
#pragma once
#include "autograd/tape.h"
#include "ops/ops.h"

namespace attend::ag {

Variable matmul(const Variable& a, const Variable& b, bool trans_a = false, bool trans_b = false);
/// x [..., K] w^T [K, N] + bias [N] (bias may be undefined).
Variable linear(const Variable& x, const Variable& w, const Variable& bias);
Variable add(const Variable& a, const Variable& b);
Variable sub(const Variable& a, const Variable& b);
Variable mul(const Variable& a, const Variable& b);
/// x in another floating dtype; the gradient is cast back to x's dtype (f32 master weights
/// computing in another dtype get f32 gradients).
Variable cast(const Variable& x, DType dtype);
/// alpha * x + beta
Variable affine(const Variable& x, double alpha, double beta = 0.0);
Variable exp(const Variable& x);
Variable log(const Variable& x);
Variable rsqrt(const Variable& x);
Variable bias_add(const Variable& x, const Variable& bias);
Variable relu(const Variable& x);
Variable gelu(const Variable& x);
Variable gelu_tanh(const Variable& x);
Variable silu(const Variable& x);
/// Identity when p == 0; the mask depends only on (seed, stream, element index).
Variable dropout(const Variable& x, double p, uint64_t seed, uint64_t stream);

Variable sum(const Variable& x);
Variable sum_last(const Variable& x);
Variable broadcast_last(const Variable& x, int64_t cols);

Variable softmax(const Variable& x, const ops::AttentionMask& mask = {});
Variable log_softmax(const Variable& x);

/// LayerNorm(x + residual) (residual may be undefined). When `sum_out` is given it receives the
/// residual stream x + residual as a Variable (pre-norm blocks continue from it).
Variable layer_norm(const Variable& x, const Variable& residual, const Variable& gamma,
                    const Variable& beta, double eps = 1e-5, Variable* sum_out = nullptr);
/// RMSNorm(x + residual) (ops::rms_norm), with residual and sum_out as for layer_norm.
Variable rms_norm(const Variable& x, const Variable& residual, const Variable& gamma,
                  double eps = 1e-6, Variable* sum_out = nullptr);

/// weight [V, D] rows gathered by i32 ids [...] -> [..., D].
Variable embedding(const Tensor& ids, const Variable& weight);

/// Scaled dot-product attention on q [B, H, Tq, Dh], k, v [B, H, Tk, Dh]: the fused kernel
/// (O(n) memory; saves output and log-sum-exp). bias (optional): the relative-position score
/// bias of ops::attention, [H, span] or [B, H, span], with its gradient.
Variable attention(const Variable& q, const Variable& k, const Variable& v,
                   const ops::AttentionMask& mask, double scale, const Variable& bias = {});
/// The unfused reference (saves the probabilities): the oracle in tests and benchmarks.
Variable attention_reference(const Variable& q, const Variable& k, const Variable& v,
                             const ops::AttentionMask& mask, double scale,
                             const Variable& bias = {});

/// Label-smoothed cross-entropy of logits [N, V] against i32 targets [N] -> scalar.
Variable cross_entropy(const Variable& logits, const Tensor& targets,
                       const ops::CrossEntropyConfig& config,
                       ops::Reduction reduction = ops::Reduction::kMean);

/// Shape views: gradients flow back through the inverse view.
Variable reshape(const Variable& x, const Shape& shape);
Variable transpose(const Variable& x, int64_t d0, int64_t d1);

}  // namespace attend::ag
