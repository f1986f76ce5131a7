// Checkpoints (round trip of weights, Adam moments and trainer state; corruption and missing
// files detected with one clear message), checkpoint averaging, and the learning-rate schedules.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "data/numbers.h"
#include "io/file.h"
#include "train/checkpoint.h"
#include "train/options.h"
#include "train/schedule.h"
#include "util.h"

namespace attend {
namespace {
namespace fs = std::filesystem;

using test::error_of;
std::string tmp_dir(const std::string& name) { return test::tmp_path("ckpt", name); }

data::Tokenizer tokenizer() {
  std::vector<std::string> s;
  for (const auto& p : data::generate_numbers(1, 300, 0, 9999, data::NumberLanguage::kEnglish)) {
    s.push_back(p.digits);
    s.push_back(p.words);
  }
  data::TokenizerOptions o;
  o.vocab_size = 60;
  return data::Tokenizer::train(s, o);
}

io::Config keys() {
  io::Config c = train::train_config();
  c.set("model.preset", "tiny", "test");
  c.set("model.d_model", "16", "test");
  c.set("model.ffn", "24", "test");
  c.set("model.encoder_layers", "1", "test");
  c.set("model.decoder_layers", "2", "test");
  return c;
}

nn::TransformerConfig config(int64_t vocab) { return train::model_config(keys(), vocab); }

TEST(Checkpoint, RoundTripsWeightsMomentsAndState) {
  const data::Tokenizer tok = tokenizer();
  nn::Transformer a(config(tok.vocab_size()), 1);
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
  train::verify_checkpoint(dir, true);

  nn::Transformer b(config(tok.vocab_size()), 99);  // different initial weights
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
  EXPECT_EQ(train::read_tokenizer(dir).bytes(), tok.bytes());
  const train::LoadedModel m = train::load_model_dir(dir);
  EXPECT_FALSE(m.model->training());
}

TEST(Checkpoint, CorruptionAndMissingFilesAreNamed) {
  const data::Tokenizer tok = tokenizer();
  nn::Transformer a(config(tok.vocab_size()), 1);
  const std::string dir = tmp_dir("bad");
  train::save_checkpoint(dir, a, nullptr, "{}", tok, {});
  std::string cfg = io::read_file(dir + "/config.json");
  cfg[0] = ' ';
  std::ofstream(dir + "/config.json") << cfg;
  EXPECT_NE(error_of([&] { train::verify_checkpoint(dir, false); }).find("config.json is corrupt"),
            std::string::npos);
  fs::remove(dir + "/tokenizer.model");
  EXPECT_NE(error_of([&] { train::verify_checkpoint(dir, false); }).find("missing tokenizer.model"),
            std::string::npos);
  EXPECT_NE(error_of([&] { train::verify_checkpoint(dir + "-nope", false); }).find("-nope"),
            std::string::npos);
  // A model of another shape cannot load these weights.
  nn::TransformerConfig other = config(tok.vocab_size());
  other.d_model = 32;
  nn::Transformer b(other, 1);
  EXPECT_NE(error_of([&] { train::load_model(dir, b); }).find("the model expects"), std::string::npos);
}

TEST(Checkpoint, AverageIsTheElementwiseMean) {
  const data::Tokenizer tok = tokenizer();
  nn::Transformer a(config(tok.vocab_size()), 1), b(config(tok.vocab_size()), 2);
  const std::string da = tmp_dir("avg_a"), db = tmp_dir("avg_b"), out = tmp_dir("avg_out");
  train::save_checkpoint(da, a, nullptr, keys().to_json(), tok, {});
  train::save_checkpoint(db, b, nullptr, keys().to_json(), tok, {});
  train::average_checkpoints({da, db}, out);
  nn::Transformer m(config(tok.vocab_size()), 3);
  train::load_model(out, m);
  const auto pa = a.named_parameters(), pb = b.named_parameters(), pm = m.named_parameters();
  for (size_t i = 0; i < pm.size(); ++i) {
    const auto x = pa[i].second.value().to_vector<float>(), y = pb[i].second.value().to_vector<float>();
    const auto z = pm[i].second.value().to_vector<float>();
    for (size_t k = 0; k < z.size(); ++k)
      ASSERT_FLOAT_EQ(z[k], static_cast<float>((static_cast<double>(x[k]) + y[k]) / 2)) << pm[i].first;
  }
}

TEST(Schedule, PaperFormulaAndPeak) {
  const train::Schedule noam{"noam", 1.0, 4000, 512};
  EXPECT_NEAR(noam.at(1), std::pow(512.0, -0.5) * std::pow(4000.0, -1.5), 1e-15);
  EXPECT_NEAR(noam.at(4000), std::pow(512.0, -0.5) / std::sqrt(4000.0), 1e-12);  // the peak
  EXPECT_NEAR(noam.at(16000), std::pow(512.0, -0.5) / std::sqrt(16000.0), 1e-12);
  const train::Schedule inv{"inverse_sqrt", 0.005, 2000, 128};
  EXPECT_NEAR(inv.at(2000), 0.005, 1e-15);
  EXPECT_NEAR(inv.at(1000), 0.0025, 1e-15);
  EXPECT_NEAR(inv.at(8000), 0.0025, 1e-15);
  EXPECT_THROW(train::Schedule({"cosine", 1.0, 10, 8}).at(1), Error);
}

}  // namespace
}  // namespace attend
