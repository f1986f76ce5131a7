// Programs on the device: the decoding session with a model moved to CUDA (Module::to) gives the
// CPU's translations token for token -- greedy and beam search, batched -- with scores within
// f32 rounding; the trainer's steps give the CPU's losses and its checkpoints resume on the CPU;
// and --device's parsing names what is missing in every build. The device tests skip without a
// GPU; scripts/gpu-check.sh's build runs them.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "core/device.h"
#include "data/tokenizer.h"
#include "decode/greedy.h"
#include "decode/session.h"
#include "gpu/cuda_test.h"
#include "train/tiny.h"
#include "train/trainer.h"
#include "util.h"

namespace attend {
namespace {

class CudaPrograms : public test::CudaTest {};

nn::TransformerConfig small(nn::Norm norm, nn::Positions positions) {
  nn::TransformerConfig c = nn::TransformerConfig::preset("tiny");
  c.d_model = 32, c.ffn = 48, c.heads = 4, c.encoder_layers = 2, c.decoder_layers = 2;
  c.src_vocab = c.tgt_vocab = 23;
  c.norm = norm;
  c.positions = positions;
  c.max_positions = 64;
  return c;
}

// EOS made likelier, so that outputs end at different lengths.
void boost_eos(nn::EncoderDecoder& model) {
  for (auto& [name, p] : model.named_parameters()) {
    if (!name.ends_with("embed_tokens.weight")) continue;
    Tensor w = p.value().to(Device::cpu());
    const int64_t D = w.size(1);
    for (int64_t d = 0; d < D; ++d) w.data<float>()[data::kEosId * D + d] *= 3.f;
    p.mutable_value() = w.to(p.value().device());
  }
}

const std::vector<std::vector<int32_t>> kSources = {
    {5, 6, 7, 8, 9}, {10, 11}, {12, 13, 14, 4}, {15, 16, 17, 18, 19, 20, 21}};

TEST_F(CudaPrograms, GreedyAndBeamSearchEqualTheCpus) {
  for (const auto& [norm, positions] : {std::pair{nn::Norm::kPost, nn::Positions::kSinusoidal},
                                        std::pair{nn::Norm::kPre, nn::Positions::kLearned}}) {
    nn::EncoderDecoder cpu(small(norm, positions), 11), gpu(small(norm, positions), 11);
    boost_eos(cpu);
    boost_eos(gpu);
    cpu.set_training(false);
    gpu.set_training(false);
    gpu.to(Device::cuda(0));
    decode::GreedyOptions g;
    g.max_extra = 6;
    EXPECT_EQ(decode::greedy(gpu, kSources, g), decode::greedy(cpu, kSources, g));
    decode::SearchOptions o;
    o.beam = 4;
    o.n_best = 2;
    o.max_extra = 6;
    const auto want = decode::search(cpu, kSources, o), got = decode::search(gpu, kSources, o);
    ASSERT_EQ(got.size(), want.size());
    for (size_t r = 0; r < want.size(); ++r) {
      ASSERT_EQ(got[r].size(), want[r].size()) << "row " << r;
      for (size_t k = 0; k < want[r].size(); ++k) {
        EXPECT_EQ(got[r][k].tokens, want[r][k].tokens) << "row " << r << " rank " << k;
        EXPECT_NEAR(got[r][k].score, want[r][k].score, 1e-4) << "row " << r << " rank " << k;
      }
    }
  }
}

// The trainer on the device (train.device cuda): steps with the model, its gradients and Adam's
// moments on the GPU give the CPU's losses (2e-4 relative, the PyTorch golden test's), and its
// checkpoint -- written from the device -- resumes on the CPU with the same next loss.
TEST_F(CudaPrograms, TrainerStepsFollowTheCpusAndCheckpointsMoveToTheCpu) {
  io::Config keys = test::tiny_keys();
  keys.set("train.lr", "0.003", "test");
  keys.set("train.schedule", "constant", "test");
  keys.set("train.warmup", "1", "test");
  const test::TinyData d(keys);
  const train::TrainOptions o = train::TrainOptions::from_config(keys);
  nn::EncoderDecoder cpu(d.config, 6), gpu(d.config, 6);
  gpu.to(Device::cuda(0));
  train::Trainer tc(cpu, d.tok, o), tg(gpu, d.tok, o);
  const data::Batch batch = d.batch(0, 8);
  for (int i = 0; i < 30; ++i) {
    const double lc = tc.step({&batch}).loss, lg = tg.step({&batch}).loss;
    ASSERT_NEAR(lg, lc, 2e-4 * std::abs(lc)) << "step " << i;
  }
  const std::string dir = test::tmp_path("cuda", "resume");
  tg.save(dir, keys.to_json(), true);
  nn::EncoderDecoder back(d.config, 99);
  train::Trainer tb(back, d.tok, o);
  tb.resume(dir);
  const double lg = tg.step({&batch}).loss, lb = tb.step({&batch}).loss;
  EXPECT_NEAR(lb, lg, 2e-4 * std::abs(lg));
  std::filesystem::remove_all(dir);
}

// Every build: the device names parse, and what is missing is named.
TEST(DeviceFlag, ParsesAndNamesWhatIsMissing) {
  EXPECT_TRUE(parse_device("cpu", "--device").is_cpu());
  for (const char* bad : {"gpu", "cuda:", "cuda:x", "cuda:-1", "CUDA", "cuda:99999"})
    EXPECT_TRUE(test::throws_with([&] { (void)parse_device(bad, "--device"); },
                                  {"--device: expected cpu, cuda or cuda:N", bad}))
        << bad;
  if (!built_with_cuda()) {
    EXPECT_TRUE(test::throws_with([] { (void)parse_device("cuda", "train.device"); },
                                  {"train.device cuda", "no CUDA backend", "-DATTEND_CUDA=ON"}));
  } else if (cuda_device_count() == 0) {
    EXPECT_TRUE(test::throws_with([] { (void)parse_device("cuda:0", "--device"); },
                                  {"--device cuda:0", "no CUDA device on this machine"}));
  } else {
    EXPECT_EQ(parse_device("cuda", "--device").index, 0);
    EXPECT_TRUE(test::throws_with([] { (void)parse_device("cuda:64", "--device"); },
                                  {"--device cuda:64", "this machine has"}));
  }
}

}  // namespace
}  // namespace attend
