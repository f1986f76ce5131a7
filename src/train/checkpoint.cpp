// Checkpoints (see checkpoint.h).
#include "train/checkpoint.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "io/file.h"
#include "io/json.h"
#include "io/safetensors.h"
#include "models/model_dir.h"
#include "ops/ops.h"

namespace attend::train {
namespace fs = std::filesystem;
namespace {

std::string path(const std::string& dir, const std::string& f) {
  return (fs::path(dir) / f).string();
}

}  // namespace

void save_checkpoint(const std::string& dir, const nn::Module& model, Adam* adam,
                     const std::string& config_json, const data::Tokenizer& tokenizer,
                     const TrainerState& s, const Ema* ema) {
  const std::string tmp = dir + ".tmp";
  std::error_code ec;
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  ATTEND_CHECK(!ec, "{}: cannot create checkpoint directory: {}", tmp, ec.message());
  nlohmann::ordered_json sums;
  auto put = [&](const std::string& name, const std::string& bytes) {
    io::write_file_atomic(path(tmp, name), bytes);
    sums[name] = io::crc32(bytes);
  };
  std::vector<std::pair<std::string, Tensor>> weights;
  for (const auto& [name, v] : model.named_parameters()) weights.emplace_back(name, v.value());
  const bool keeps_ema = ema != nullptr && adam != nullptr;
  put("model.safetensors", io::safetensors_bytes(ema ? ema->named() : weights, {{"format", "pt"}}));
  if (keeps_ema)
    put("train_weights.safetensors", io::safetensors_bytes(weights, {{"format", "pt"}}));
  if (adam) {
    std::vector<std::pair<std::string, Tensor>> moments;
    for (auto& m : adam->state()) {
      moments.emplace_back("m." + m.name, m.m);
      moments.emplace_back("v." + m.name, m.v);
    }
    put("optimizer.safetensors",
        io::safetensors_bytes(moments, {{"step", std::to_string(adam->steps())}}));
  }
  put("config.json", config_json);
  put("tokenizer.model", tokenizer.bytes());
  nlohmann::ordered_json st = {{"step", s.step},
                               {"epoch", s.epoch},
                               {"batch_index", s.batch_index},
                               {"target_tokens", s.target_tokens},
                               {"elapsed_seconds", s.elapsed_seconds},
                               {"best_metric", s.best_metric},
                               {"has_best", s.has_best},
                               {"bad_validations", s.bad_validations},
                               {"validations", s.validations},
                               {"global_batches", s.global_batches},
                               {"ema", keeps_ema},
                               {"crc32", sums}};
  io::write_file_atomic(path(tmp, "trainer_state.json"), st.dump(2) + "\n");
  io::fsync_dir(tmp);
  io::replace_dir_atomic(tmp, dir);
}

std::string read_config_json(const std::string& dir) {
  return io::read_file(path(dir, "config.json"));
}

void load_model(const std::string& dir, nn::Module& model) {
  models::load_weights(path(dir, "model.safetensors"), model);
}

void load_training_weights(const std::string& dir, nn::Module& model) {
  models::load_weights(
      path(dir, load_state(dir).ema ? "train_weights.safetensors" : "model.safetensors"), model);
}

void load_ema(const std::string& dir, Ema& ema) {
  models::load_weights(path(dir, "model.safetensors"), ema.named());
}

void load_optimizer(const std::string& dir, Adam& adam) {
  const std::string file = path(dir, "optimizer.safetensors");
  const io::SafeTensors st = io::load_safetensors(file);
  for (auto& m : adam.state()) {
    const Tensor& tm = st.at("m." + m.name);
    const Tensor& tv = st.at("v." + m.name);
    ATTEND_CHECK(tm.shape() == m.m.shape() && tv.shape() == m.v.shape(),
                 "{}: moments of '{}' have the wrong shape", file, m.name);
    m.m.copy_from(tm);
    m.v.copy_from(tv);
  }
  ATTEND_CHECK(st.metadata.count("step"), "{}: no step in the metadata", file);
  adam.set_steps(std::stoll(st.metadata.at("step")));
}

TrainerState load_state(const std::string& dir) {
  const std::string file = path(dir, "trainer_state.json");
  const nlohmann::json j = io::read_json_object(file);
  // Each field by its type: a number of the wrong kind (a float where a count belongs, one
  // past int64's range) is an error naming it, never a conversion with an undefined result.
  auto count = [&](const char* key, bool required) -> int64_t {
    if (!j.contains(key)) {
      ATTEND_CHECK(!required, "{}: corrupt or incomplete: no \"{}\"", file, key);
      return 0;
    }
    const nlohmann::json& v = j[key];
    ATTEND_CHECK(
        v.is_number_integer() &&
            (!v.is_number_unsigned() || v.get<uint64_t>() <= static_cast<uint64_t>(INT64_MAX)) &&
            v.get<int64_t>() >= 0,
        "{}: corrupt: \"{}\" must be a whole number >= 0, got {}", file, key, v.dump());
    return v.get<int64_t>();
  };
  auto real = [&](const char* key) {
    ATTEND_CHECK(j.contains(key) && j[key].is_number(),
                 "{}: corrupt or incomplete: \"{}\" must be a number", file, key);
    return j[key].get<double>();
  };
  auto flag = [&](const char* key, bool required) {
    if (!j.contains(key)) {
      ATTEND_CHECK(!required, "{}: corrupt or incomplete: no \"{}\"", file, key);
      return false;
    }
    ATTEND_CHECK(j[key].is_boolean(), "{}: corrupt: \"{}\" must be true or false, got {}", file,
                 key, j[key].dump());
    return j[key].get<bool>();
  };
  TrainerState s;
  s.step = count("step", true);
  s.epoch = count("epoch", true);
  s.batch_index = count("batch_index", true);
  s.target_tokens = count("target_tokens", true);
  s.elapsed_seconds = real("elapsed_seconds");
  s.best_metric = real("best_metric");
  s.has_best = flag("has_best", true);
  s.bad_validations = count("bad_validations", true);
  s.validations = count("validations", true);
  s.ema = flag("ema", false);                         // absent before moving averages
  s.global_batches = count("global_batches", false);  // absent before data parallel
  return s;
}

}  // namespace attend::train

namespace attend::train {

void average_checkpoints(const std::vector<std::string>& dirs, const std::string& out) {
  ATTEND_CHECK(!dirs.empty(), "average: no checkpoints given");
  std::vector<std::pair<std::string, Tensor>> sum;
  for (size_t k = 0; k < dirs.size(); ++k) {
    models::verify_model_dir(dirs[k], false);
    const io::SafeTensors st = io::load_safetensors(path(dirs[k], "model.safetensors"));
    for (const auto& [n, t] : st.tensors)
      ATTEND_CHECK(t.dtype() != DType::kI8,
                   "average: {} is an int8 model ('{}' is {}, written by attend quantize): "
                   "average the fp32 checkpoints, then quantize the average",
                   dirs[k], n, t.str());
    if (k == 0) {
      for (const auto& [n, t] : st.tensors) sum.emplace_back(n, t.to(DType::kF64));
      continue;
    }
    ATTEND_CHECK(st.tensors.size() == sum.size(), "average: {} holds {} tensors but {} holds {}",
                 dirs[k], st.tensors.size(), dirs[0], sum.size());
    for (auto& [n, acc] : sum) {
      const Tensor t = st.at(n).to(DType::kF64);
      ATTEND_CHECK(t.shape() == acc.shape(), "average: '{}' is {} in {} but {} in {}", n,
                   shape_str(t.shape()), dirs[k], shape_str(acc.shape()), dirs[0]);
      acc = ops::add(acc, t);  // in double: the mean of many checkpoints loses nothing
    }
  }
  std::vector<std::pair<std::string, Tensor>> avg;
  for (auto& [n, acc] : sum)
    avg.emplace_back(n, ops::affine(acc, 1.0 / static_cast<double>(dirs.size())).to(DType::kF32));
  std::error_code ec;
  fs::create_directories(out, ec);
  ATTEND_CHECK(!ec, "{}: cannot create: {}", out, ec.message());
  io::save_safetensors(path(out, "model.safetensors"), avg,
                       {{"format", "pt"}, {"averaged", std::to_string(dirs.size())}});
  for (const char* f : {"config.json", "tokenizer.model"})
    io::write_file_atomic(path(out, f), io::read_file(path(dirs.back(), f)));
}

}  // namespace attend::train
