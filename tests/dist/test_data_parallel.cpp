// Data-parallel training over MPI. ctest runs this under `mpirun -np 2` (test data_parallel);
// run alone, it is a world of one rank and the two-rank tests skip.
//  - The gradient reducer sums every bucket over the ranks, whatever order the parameters
//    report ready in, and flushes parameters that never report (no gradient this step).
//  - Two ranks, one batch each, give the losses of one process accumulating both batches, for
//    50 steps with dropout on; the ranks' weights stay bit-identical to each other and close
//    to the one-process weights (float sums in another order: see the tolerance below).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "data/batcher.h"
#include "data/numbers.h"
#include "dist/communicator.h"
#include "dist/reducer.h"
#include "models/config.h"
#include "train/tiny.h"
#include "train/trainer.h"
#include "util.h"

namespace attend {
namespace {

TEST(Reducer, SumsEveryBucketOverTheRanksInAnyReadyOrder) {
  dist::Communicator& comm = dist::world();
  const int64_t sizes[] = {10, 3000, 7, 50000, 1, 1200, 64};
  std::vector<std::pair<int64_t, int64_t>> params;
  int64_t n = 0;
  for (int64_t s : sizes) params.emplace_back(n, s), n += s;
  Tensor flat = Tensor::zeros({n});
  dist::GradientReducer reducer(comm, flat, params, 16 * 1024);  // 4,096 floats per bucket
  EXPECT_EQ(reducer.num_buckets(), 2);                           // {64 .. 50000} and {7, 3000, 10}
  std::mt19937 rng(5);
  for (int round = 0; round < 3; ++round) {
    float* p = flat.data<float>();
    for (int64_t i = 0; i < n; ++i) p[i] = static_cast<float>((comm.rank() + 1) * (i % 13));
    std::vector<size_t> order(params.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::shuffle(order.begin(), order.end(), rng);  // the same order on every rank (same seed)
    reducer.arm();
    // Round 2: two parameters never report (they got no gradient); finish() flushes them.
    for (size_t k = 0; k < order.size() - (round == 2 ? 2 : 0); ++k) reducer.ready(order[k]);
    reducer.finish();
    const int64_t ranks = comm.size(), factor = ranks * (ranks + 1) / 2;
    for (int64_t i = 0; i < n; ++i)
      ASSERT_EQ(p[i], static_cast<float>(factor * (i % 13)))
          << "element " << i << " round " << round;
  }
  EXPECT_GE(reducer.seconds_communicating(), 0.0);
}

TEST(Reducer, BucketSizeMustBePositive) {
  Tensor flat = Tensor::zeros({4});
  EXPECT_TRUE(test::throws_with(
      [&] {
        dist::GradientReducer(dist::world(), flat, {{0, 4}}, 0);
      },
      {"train.bucket_mb"}));
}

io::Config keys() {
  io::Config c = test::tiny_keys();
  c.set("train.lr", "0.003", "test");
  c.set("train.schedule", "constant", "test");
  c.set("train.warmup", "1", "test");
  c.set("train.clip_norm", "1.0", "test");
  c.set("train.bucket_mb", "0.01", "test");  // several buckets, so overlap is exercised
  return c;
}

TEST(DataParallel, TwoRanksEqualOneProcessAccumulatingTheirBatches) {
  dist::Communicator& comm = dist::world();
  if (comm.size() != 2) GTEST_SKIP() << "needs mpirun -np 2 (ctest data_parallel)";
  const data::Tokenizer tok = test::tiny_tokenizer();
  const io::Config c = keys();
  const nn::TransformerConfig config = models::model_config(c, tok.vocab_size(), &tok);
  ASSERT_GT(config.dropout, 0.0);  // dropout streams must line up too
  std::vector<data::Example> examples;
  for (const auto& p : data::generate_numbers(5, 48, 0, 9999, data::NumberLanguage::kEnglish))
    examples.push_back({config.source(tok.encode(p.digits)), tok.encode(p.words)});
  auto batch = [&](int64_t step, int64_t which) {  // batch `which` (0, 1) of a global step
    std::vector<int64_t> rows;
    const int64_t first = (step * 12 + which * 6) % 48;
    for (int64_t i = first; i < first + 6; ++i) rows.push_back(i);
    return data::make_batch(examples, rows);
  };
  const train::TrainOptions o = train::TrainOptions::from_config(c);
  nn::EncoderDecoder model(config, 1);
  train::Trainer dp(model, tok, o, &comm);
  ASSERT_NE(dp.reducer(), nullptr);
  EXPECT_GT(dp.reducer()->num_buckets(), 1);
  // Rank 0 also trains the one-process reference (no communicator) on both batches.
  std::unique_ptr<nn::EncoderDecoder> ref_model;
  std::unique_ptr<train::Trainer> ref;
  if (comm.rank() == 0) {
    ref_model = std::make_unique<nn::EncoderDecoder>(config, 1);
    ref = std::make_unique<train::Trainer>(*ref_model, tok, o);
  }
  for (int64_t step = 0; step < 50; ++step) {
    const data::Batch mine = batch(step, comm.rank());
    const train::StepResult r = dp.step({&mine});
    if (ref) {
      const data::Batch b0 = batch(step, 0), b1 = batch(step, 1);
      const train::StepResult want = ref->step({&b0, &b1});
      EXPECT_EQ(r.tokens, want.tokens) << "step " << step;
      EXPECT_NEAR(r.loss, want.loss, 1e-5 * want.loss) << "step " << step;
      EXPECT_NEAR(r.grad_norm, want.grad_norm, 1e-4 * want.grad_norm) << "step " << step;
    }
  }
  // The ranks hold the same weights, bit for bit (the same summed gradients, the same update).
  int64_t differ = 0;
  for (auto& [name, v] : model.named_parameters()) {
    Tensor theirs = v.value().clone();
    dist::broadcast_tensor(comm, theirs, 0);
    if (theirs.to_vector<float>() != v.value().to_vector<float>()) differ = 1;
  }
  comm.all_reduce_max(&differ, 1);
  EXPECT_EQ(differ, 0) << "a rank's weights drifted from rank 0's";
  // Against one process: the gradients are the same sums in another order (one all-reduce vs
  // accumulating micro-batch by micro-batch), a relative difference of ~1e-7 per step that
  // Adam's normalised steps (lr 0.003) carry forward: after 50 steps the weights agree to
  // well within 1e-3 (absolute, weights of size ~0.1-1). Except the key projections' biases:
  // softmax ignores a constant added to every key, so their true gradient is 0 and what they
  // get is rounding noise, which Adam turns into full-size steps in arbitrary directions.
  if (ref) {
    const auto a = model.named_parameters(), b = ref_model->named_parameters();
    for (size_t i = 0; i < a.size(); ++i) {
      if (a[i].first.find("k_proj.bias") != std::string::npos) continue;
      EXPECT_TRUE(test::close(a[i].second.value(), b[i].second.value(), 0, 1e-3)) << a[i].first;
    }
  }
}

}  // namespace
}  // namespace attend
