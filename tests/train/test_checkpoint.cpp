// Checkpoints (round trip of weights, Adam moments and trainer state; corruption and missing
// files detected with one clear message), checkpoint averaging, the moving average of the
// weights and its checkpoints, and the learning-rate schedules.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "data/numbers.h"
#include "io/file.h"
#include "models/config.h"
#include "models/model_dir.h"
#include "train/checkpoint.h"
#include "train/ema.h"
#include "train/options.h"
#include "train/schedule.h"
#include "tiny.h"
#include "util.h"

namespace attend {
namespace {
namespace fs = std::filesystem;

using test::error_of;
std::string tmp_dir(const std::string& name) { return test::tmp_path("ckpt", name); }

data::Tokenizer tokenizer() { return test::tiny_tokenizer(); }
io::Config keys() { return test::tiny_keys(); }

nn::TransformerConfig config(int64_t vocab) { return models::model_config(keys(), vocab); }

TEST(Checkpoint, RoundTripsWeightsMomentsAndState) {
  const data::Tokenizer tok = tokenizer();
  nn::EncoderDecoder a(config(tok.vocab_size()), 1);
  train::Adam adam(a.named_parameters(), {0.01, 0.9, 0.98, 1e-9, 0.0});
  a.zero_grad();
  for (const auto& [n, v] : a.named_parameters()) const_cast<Tensor&>(v.grad()).copy_from(Tensor::full(v.shape(), 0.5));
  adam.step();
  adam.step();
  train::TrainerState st;
  st.step = 2, st.epoch = 3, st.batch_index = 17, st.best_metric = 12.5, st.has_best = true;
  const std::string dir = tmp_dir("rt");
  train::save_checkpoint(dir, a, &adam, keys().to_json(), tok, st);
  EXPECT_FALSE(fs::exists(dir + ".tmp"));
  models::verify_model_dir(dir, true);

  nn::EncoderDecoder b(config(tok.vocab_size()), 99);  // different initial weights
  train::Adam adam_b(b.named_parameters(), {0.01, 0.9, 0.98, 1e-9, 0.0});
  train::load_model(dir, b);
  train::load_optimizer(dir, adam_b);
  const auto pa = a.named_parameters(), pb = b.named_parameters();
  for (size_t i = 0; i < pa.size(); ++i)
    EXPECT_EQ(pa[i].second.value().to_vector<float>(), pb[i].second.value().to_vector<float>()) << pa[i].first;
  auto ma = adam.state(), mb = adam_b.state();
  for (size_t i = 0; i < ma.size(); ++i) {
    EXPECT_EQ(ma[i].m.to_vector<float>(), mb[i].m.to_vector<float>());
    EXPECT_EQ(ma[i].v.to_vector<float>(), mb[i].v.to_vector<float>());
  }
  EXPECT_EQ(adam_b.steps(), 2);
  const train::TrainerState r = train::load_state(dir);
  EXPECT_EQ(r.epoch, 3);
  EXPECT_EQ(r.batch_index, 17);
  EXPECT_DOUBLE_EQ(r.best_metric, 12.5);
  EXPECT_EQ(models::read_tokenizer(dir).bytes(), tok.bytes());
  const models::LoadedModel m = models::load_model_dir(dir);
  EXPECT_FALSE(m.model->training());
}

TEST(Checkpoint, TheModelDirectoryCarriesHowSourcesAreEnded) {
  const data::Tokenizer tok = tokenizer();
  for (const bool eos : {false, true}) {
    io::Config c = keys();
    if (eos) c.set("model.source_eos", "true", "test");
    nn::EncoderDecoder a(models::model_config(c, 0, &tok), 1);
    EXPECT_EQ(a.config().source_eos, eos);
    const std::string dir = tmp_dir(eos ? "eos" : "noeos");
    train::save_checkpoint(dir, a, nullptr, c.to_json(), tok, {});
    EXPECT_EQ(models::load_model_dir(dir).model->config().source_eos, eos);  // what translate reads
  }
}

TEST(Checkpoint, CorruptionAndMissingFilesAreNamed) {
  const data::Tokenizer tok = tokenizer();
  nn::EncoderDecoder a(config(tok.vocab_size()), 1);
  const std::string dir = tmp_dir("bad");
  train::save_checkpoint(dir, a, nullptr, "{}", tok, {});
  std::string cfg = io::read_file(dir + "/config.json");
  cfg[0] = ' ';
  std::ofstream(dir + "/config.json") << cfg;
  EXPECT_NE(error_of([&] { models::verify_model_dir(dir, false); }).find("config.json is corrupt"),
            std::string::npos);
  fs::remove(dir + "/tokenizer.model");
  EXPECT_NE(error_of([&] { models::verify_model_dir(dir, false); }).find("missing tokenizer.model"),
            std::string::npos);
  EXPECT_NE(error_of([&] { models::verify_model_dir(dir + "-nope", false); }).find("-nope"),
            std::string::npos);
  // A model of another shape cannot load these weights.
  nn::TransformerConfig other = config(tok.vocab_size());
  other.d_model = 32;
  nn::EncoderDecoder b(other, 1);
  EXPECT_NE(error_of([&] { train::load_model(dir, b); }).find("the model expects"), std::string::npos);
}

// Found by fuzz/fuzz_config.cpp: a trainer_state.json with a count out of int64's range (or of
// the wrong type) was converted with undefined behaviour; now each field is checked and named.
TEST(Checkpoint, TrainerStateFieldsAreCheckedByType) {
  const std::string dir = test::tmp_path("checkpoint", "state");
  std::filesystem::create_directories(dir);
  const std::string good =
      R"({"step": 5, "epoch": 1, "batch_index": 2, "target_tokens": 90, "elapsed_seconds": 1.5,
          "best_metric": 3.25, "has_best": true, "bad_validations": 0, "validations": 1})";
  io::write_file_atomic(dir + "/trainer_state.json", good);
  const train::TrainerState s = train::load_state(dir);
  EXPECT_EQ(s.step, 5);
  EXPECT_EQ(s.target_tokens, 90);
  EXPECT_FALSE(s.ema);
  EXPECT_EQ(s.global_batches, 0);
  const std::vector<std::pair<std::string, std::string>> bad = {
      {R"("step": 5,)", R"("step": 1e300,)"},
      {R"("step": 5,)", R"("step": -3,)"},
      {R"("epoch": 1,)", R"("epoch": 1.5,)"},
      {R"("has_best": true,)", R"("has_best": 1,)"},
      {R"("best_metric": 3.25,)", R"("best_metric": "x",)"},
      {R"("step": 5,)", ""}};
  for (const auto& [from, to] : bad) {
    std::string text = good;
    text.replace(text.find(from), from.size(), to);
    io::write_file_atomic(dir + "/trainer_state.json", text);
    const std::string key = from.substr(2, from.find('"', 2) - 2);
    const std::string e = test::error_of([&] { train::load_state(dir); });
    EXPECT_NE(e.find("trainer_state.json"), std::string::npos) << text;
    EXPECT_NE(e.find(key), std::string::npos) << e;
  }
  io::write_file_atomic(dir + "/trainer_state.json", "[1, 2]");
  EXPECT_NE(test::error_of([&] { train::load_state(dir); }).find("not a JSON object"),
            std::string::npos);
}

TEST(Checkpoint, AverageIsTheElementwiseMean) {
  const data::Tokenizer tok = tokenizer();
  nn::EncoderDecoder a(config(tok.vocab_size()), 1), b(config(tok.vocab_size()), 2);
  const std::string da = tmp_dir("avg_a"), db = tmp_dir("avg_b"), out = tmp_dir("avg_out");
  train::save_checkpoint(da, a, nullptr, keys().to_json(), tok, {});
  train::save_checkpoint(db, b, nullptr, keys().to_json(), tok, {});
  train::average_checkpoints({da, db}, out);
  nn::EncoderDecoder m(config(tok.vocab_size()), 3);
  train::load_model(out, m);
  const auto pa = a.named_parameters(), pb = b.named_parameters(), pm = m.named_parameters();
  for (size_t i = 0; i < pm.size(); ++i) {
    const auto x = pa[i].second.value().to_vector<float>(), y = pb[i].second.value().to_vector<float>();
    const auto z = pm[i].second.value().to_vector<float>();
    for (size_t k = 0; k < z.size(); ++k)
      ASSERT_FLOAT_EQ(z[k], static_cast<float>((static_cast<double>(x[k]) + y[k]) / 2)) << pm[i].first;
  }
}

// Sets every weight of `m` to `value`.
void fill(nn::EncoderDecoder& m, double value) {
  for (const auto& [n, v] : m.named_parameters()) v.mutable_value().copy_from(Tensor::full(v.shape(), value));
}

TEST(Ema, FollowsTheRecurrenceWithItsDecayWarmUp) {
  const data::Tokenizer tok = tokenizer();
  nn::EncoderDecoder m(config(tok.vocab_size()), 1);
  fill(m, 1.0);
  train::Ema ema(m.named_parameters(), 0.9);
  EXPECT_DOUBLE_EQ(ema.decay_at(1), 2.0 / 11.0);  // (1 + t) / (10 + t) below the decay
  EXPECT_DOUBLE_EQ(ema.decay_at(80), 0.9);        // 81 / 90 = 0.9: the decay from here on
  EXPECT_DOUBLE_EQ(ema.decay_at(1000), 0.9);
  // Weights 1 at the start, then 3, 5, 7, ... after steps 1, 2, 3, ...: the average must follow
  // a <- d_t a + (1 - d_t) w in double to float precision.
  double want = 1.0;
  for (int64_t t = 1; t <= 120; ++t) {
    const double w = 1.0 + 2.0 * static_cast<double>(t);
    fill(m, w);
    ema.update(t);
    want = ema.decay_at(t) * want + (1 - ema.decay_at(t)) * w;
  }
  for (const auto& [name, t] : ema.named())
    for (float x : t.to_vector<float>()) ASSERT_NEAR(x, want, 1e-4 * want) << name;
  EXPECT_NEAR(want, 241.0 - 2.0 * 0.9 / 0.1, 0.05);  // lags by d / (1 - d) steps of 2
  // swap() exchanges the averaged and the raw weights exactly, and undoes itself.
  ema.swap();
  for (const auto& [n, v] : m.named_parameters())
    for (float x : v.value().to_vector<float>()) ASSERT_NEAR(x, want, 1e-4 * want) << n;
  for (const auto& [n, t] : ema.named())
    for (float x : t.to_vector<float>()) ASSERT_EQ(x, 241.0f) << n;
  ema.swap();
  for (const auto& [n, v] : m.named_parameters())
    for (float x : v.value().to_vector<float>()) ASSERT_EQ(x, 241.0f) << n;
  EXPECT_THROW(train::Ema(m.named_parameters(), 1.0), Error);
  EXPECT_THROW(train::Ema(m.named_parameters(), -0.1), Error);
}

TEST(Ema, CheckpointKeepsTheAverageForInferenceAndTheRawWeightsForResume) {
  const data::Tokenizer tok = tokenizer();
  nn::EncoderDecoder a(config(tok.vocab_size()), 1);
  train::Adam adam(a.named_parameters(), {0.01, 0.9, 0.98, 1e-9, 0.0});
  train::Ema ema(a.named_parameters(), 0.99);
  fill(a, 2.0);
  ema.update(1);  // average = (2/11) * initial weights + (9/11) * 2
  train::TrainerState st;
  st.step = 1;
  const std::string dir = tmp_dir("ema");
  train::save_checkpoint(dir, a, &adam, keys().to_json(), tok, st, &ema);
  EXPECT_TRUE(train::load_state(dir).ema);
  EXPECT_TRUE(fs::exists(dir + "/train_weights.safetensors"));
  models::verify_model_dir(dir, true);

  // Inference (translate, average) reads the average; resuming reads the raw weights.
  nn::EncoderDecoder b(config(tok.vocab_size()), 5);
  train::load_model(dir, b);
  const auto want = ema.named();
  const auto pb = b.named_parameters();
  for (size_t i = 0; i < pb.size(); ++i)
    ASSERT_EQ(pb[i].second.value().to_vector<float>(), want[i].second.to_vector<float>()) << pb[i].first;
  train::load_training_weights(dir, b);
  for (const auto& [n, v] : b.named_parameters())
    for (float x : v.value().to_vector<float>()) ASSERT_EQ(x, 2.0f) << n;
  train::Ema ema_b(b.named_parameters(), 0.99);
  train::load_ema(dir, ema_b);
  const auto got = ema_b.named();
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_EQ(got[i].second.to_vector<float>(), want[i].second.to_vector<float>()) << got[i].first;

  // A checkpoint that keeps an average cannot be resumed without its raw weights.
  fs::remove(dir + "/train_weights.safetensors");
  models::verify_model_dir(dir, false);  // still a model for inference
  EXPECT_NE(error_of([&] { models::verify_model_dir(dir, true); }).find("missing train_weights.safetensors"),
            std::string::npos);
  // Without an average, model.safetensors is what training continues from.
  const std::string plain = tmp_dir("ema_plain");
  train::save_checkpoint(plain, a, &adam, keys().to_json(), tok, st);
  EXPECT_FALSE(train::load_state(plain).ema);
  EXPECT_FALSE(fs::exists(plain + "/train_weights.safetensors"));
  fill(b, 0.0);
  train::load_training_weights(plain, b);
  for (const auto& [n, v] : b.named_parameters())
    for (float x : v.value().to_vector<float>()) ASSERT_EQ(x, 2.0f) << n;
}

TEST(Schedule, PaperFormulaAndPeak) {
  const train::Schedule noam{train::ScheduleKind::kNoam, 1.0, 4000, 512};
  EXPECT_NEAR(noam.at(1), std::pow(512.0, -0.5) * std::pow(4000.0, -1.5), 1e-15);
  EXPECT_NEAR(noam.at(4000), std::pow(512.0, -0.5) / std::sqrt(4000.0), 1e-12);  // the peak
  EXPECT_NEAR(noam.at(16000), std::pow(512.0, -0.5) / std::sqrt(16000.0), 1e-12);
  const train::Schedule inv{train::ScheduleKind::kInverseSqrt, 0.005, 2000, 128};
  EXPECT_NEAR(inv.at(2000), 0.005, 1e-15);
  EXPECT_NEAR(inv.at(1000), 0.0025, 1e-15);
  EXPECT_NEAR(inv.at(8000), 0.0025, 1e-15);
  const train::Schedule cos{train::ScheduleKind::kCosine, 0.002, 100, 192, 1100};
  EXPECT_NEAR(cos.at(50), 0.001, 1e-15);             // warming up
  EXPECT_NEAR(cos.at(100), 0.002, 1e-15);            // the peak
  EXPECT_NEAR(cos.at(600), 0.002 * 0.55, 1e-15);     // half way: the mean of peak and floor
  EXPECT_NEAR(cos.at(1100), 0.0002, 1e-15);          // peak / 10 at max_steps ...
  EXPECT_NEAR(cos.at(5000), 0.0002, 1e-15);          // ... and after
  EXPECT_THROW(train::parse_schedule("linear"), Error);
  EXPECT_EQ(train::parse_schedule("constant"), train::ScheduleKind::kConstant);
  EXPECT_EQ(train::parse_schedule("cosine"), train::ScheduleKind::kCosine);
}

}  // namespace
}  // namespace attend
