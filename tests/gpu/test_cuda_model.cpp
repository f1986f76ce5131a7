// Whole models on the device: each family is built on the CPU, a twin from the same seed is moved
// to CUDA (Module::to), and both run a training step in training mode (dropout on: the device
// draws the CPU's masks). The logits, the loss and every parameter gradient must agree, and so
// must the losses of ten Adam(W) steps (as the PyTorch golden test checks them: the weights
// themselves may part by a step's size where a gradient is rounding noise, which Adam
// normalises). Skips without a GPU.
//
// Tolerances: the two devices sum the products in different orders (cuBLAS against oneDNN; the
// attention and reductions likewise), so they differ by rounding, ~sqrt(K) 2^-24 relative per
// product over K <= 128 terms, compounded through a few layers: 1e-4 of the largest magnitude
// for logits and loss, 1e-3 for gradients (a difference of few units' rounding divided by small
// magnitudes); 2e-4 for the ten steps' losses, the golden test's. A wrong kernel (a mask, a
// transpose, a reduction) errs by O(1) of that scale.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "gpu/cuda_test.h"
#include "nn/transformer.h"
#include "ops/ops.h"
#include "util.h"

namespace attend {
namespace {

class CudaModel : public test::CudaTest {};

/// max |got - want| <= rtol * max |want| (got moved to the CPU).
void expect_close(const Tensor& got, const Tensor& want, double rtol, const std::string& what) {
  ASSERT_EQ(got.shape(), want.shape()) << what;
  const auto g = got.to(Device::cpu()).contiguous().to_vector<float>();
  const auto w = want.contiguous().to_vector<float>();
  double err = 0, scale = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    err = std::max(err, std::abs(static_cast<double>(g[i]) - w[i]));
    scale = std::max(scale, std::abs(static_cast<double>(w[i])));
  }
  EXPECT_LE(err, rtol * scale + 1e-7)
      << what << ": max error " << err << " (scale " << scale << ")";
}

nn::TransformerConfig small(nn::Arch arch) {
  nn::TransformerConfig c = nn::TransformerConfig::preset("tiny");
  c.arch = arch;
  c.d_model = 32, c.ffn = 64, c.heads = 4, c.encoder_layers = c.decoder_layers = 2;
  c.src_vocab = c.tgt_vocab = 29;
  c.dropout = 0.1;
  c.max_positions = 32;
  return c;
}

/// A batch: ids [3, 7] right-padded with 0, lengths 7, 4, 1; targets the ids shifted left, 0 (the
/// ignored pad) past each row's end.
struct Batch {
  Tensor ids, lengths, targets;
  Batch to(Device d) const { return {ids.to(d), lengths.to(d), targets.to(d)}; }
};
Batch batch() {
  const std::vector<int32_t> ids = {5, 9,  3, 17, 22, 8, 11,  //
                                    4, 28, 6, 13, 0,  0, 0,   //
                                    7, 0,  0, 0,  0,  0, 0};
  std::vector<int32_t> targets(ids.size(), 0);
  const int32_t lengths[] = {7, 4, 1};
  for (int b = 0; b < 3; ++b)
    for (int t = 0; t + 1 < lengths[b]; ++t) targets[b * 7 + t] = ids[b * 7 + t + 1];
  return {test::ids(ids, {3, 7}), test::ids({7, 4, 1}, {3}), test::ids(targets, {21})};
}

/// One model's run: logits and loss of a recorded forward, then backward.
template <typename Model>
std::pair<Tensor, double> step(const Model& m, const Batch& b, uint64_t stream) {
  m.zero_grad();
  ag::Tape tape;
  ag::Variable logits, loss;
  {
    ag::TapeScope rec(&tape);
    if constexpr (std::is_same_v<Model, nn::EncoderDecoder>)
      logits = m.forward(b.ids, b.lengths, b.ids, b.lengths, stream);
    else
      logits = m.forward(b.ids, b.lengths, stream);
    loss = ag::cross_entropy(logits, b.targets, {0.1, 0});
  }
  tape.backward(loss);
  return {logits.value(), loss.value().item()};
}

template <typename Model>
void train_on_both(const nn::TransformerConfig& c) {
  Model cpu(c, 7), gpu(c, 7);
  gpu.to(Device::cuda(0));
  const Batch on_cpu = batch(), on_gpu = on_cpu.to(Device::cuda(0));
  const auto [want_logits, want_loss] = step(cpu, on_cpu, 3);
  const auto [got_logits, got_loss] = step(gpu, on_gpu, 3);
  EXPECT_TRUE(got_logits.device().is_cuda());
  expect_close(got_logits, want_logits, 1e-4, "logits");
  EXPECT_NEAR(got_loss, want_loss, 1e-4 * std::abs(want_loss));
  const auto pc = cpu.named_parameters(), pg = gpu.named_parameters();
  ASSERT_EQ(pc.size(), pg.size());
  for (size_t i = 0; i < pc.size(); ++i)
    expect_close(pg[i].second.grad(), pc[i].second.grad(), 1e-3, "grad " + pc[i].first);

  // Ten AdamW steps on each, the moments kept on each parameter's device.
  const ops::AdamConfig adam{1e-3, 0.9, 0.98, 1e-9, 0.01};
  std::vector<Tensor> mc, vc, mg, vg;
  for (size_t i = 0; i < pc.size(); ++i) {
    mc.push_back(Tensor::zeros(pc[i].second.value().shape()));
    vc.push_back(Tensor::zeros(pc[i].second.value().shape()));
    mg.push_back(Tensor::zeros(pg[i].second.value().shape(), DType::kF32, Device::cuda(0)));
    vg.push_back(Tensor::zeros(pg[i].second.value().shape(), DType::kF32, Device::cuda(0)));
  }
  for (int64_t s = 1; s <= 10; ++s) {
    const auto [lc_logits, lc] = step(cpu, on_cpu, 100 + s);
    const auto [lg_logits, lg] = step(gpu, on_gpu, 100 + s);
    EXPECT_NEAR(lg, lc, 2e-4 * std::abs(lc)) << "step " << s;
    for (size_t i = 0; i < pc.size(); ++i) {
      ops::adam_update(pc[i].second.mutable_value(), pc[i].second.grad(), mc[i], vc[i], adam, s);
      ops::adam_update(pg[i].second.mutable_value(), pg[i].second.grad(), mg[i], vg[i], adam, s);
    }
  }
}

TEST_F(CudaModel, EncoderDecoderTrainsAsOnTheCpu) {
  nn::TransformerConfig c = small(nn::Arch::kEncoderDecoder);
  c.norm = nn::Norm::kPost;
  c.positions = nn::Positions::kSinusoidal;
  train_on_both<nn::EncoderDecoder>(c);
}

TEST_F(CudaModel, DecoderOnlyTrainsAsOnTheCpu) {
  nn::TransformerConfig c = small(nn::Arch::kDecoderOnly);
  c.norm = nn::Norm::kPre;
  c.positions = nn::Positions::kLearned;
  c.activation = nn::Activation::kGeluTanh;
  train_on_both<nn::DecoderOnly>(c);
}

// T5's layout: RMSNorm, relative position bias, gated GELU, bias-free linears, unscaled scores.
TEST_F(CudaModel, T5LayoutTrainsAsOnTheCpu) {
  nn::TransformerConfig c = small(nn::Arch::kEncoderDecoder);
  c.norm = nn::Norm::kPre;
  c.positions = nn::Positions::kRelative;
  c.norm_type = nn::NormType::kRms;
  c.linear_bias = false;
  c.gated_ffn = true;
  c.head_dim = 12;
  c.scale_attention = false;
  c.relative_buckets = 8, c.relative_max_distance = 6;
  c.activation = nn::Activation::kGelu;
  train_on_both<nn::EncoderDecoder>(c);
}

TEST_F(CudaModel, EncoderOnlyTrainsAsOnTheCpu) {
  nn::TransformerConfig c = small(nn::Arch::kEncoderOnly);
  c.norm = nn::Norm::kPost;
  c.positions = nn::Positions::kLearned;
  c.embed_norm = true;
  c.mlm_head = true;
  train_on_both<nn::EncoderOnly>(c);
}

}  // namespace
}  // namespace attend
