// Model directories (see model_dir.h).
#include "models/model_dir.h"

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/device.h"
#include "io/config.h"
#include "io/file.h"
#include "io/json.h"
#include "io/safetensors.h"
#include "models/config.h"

namespace attend::models {
namespace fs = std::filesystem;
namespace {

const char* kModelFiles[] = {"model.safetensors", "config.json", "tokenizer.model"};

std::string path(const std::string& dir, const std::string& f) {
  return (fs::path(dir) / f).string();
}

}  // namespace

std::vector<std::string> list_checkpoints(const std::string& run_dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(fs::path(run_dir) / "checkpoints", ec))
    if (e.is_directory() && e.path().filename().string().rfind("step-", 0) == 0 &&
        e.path().extension() != ".tmp")
      names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

std::string last_checkpoint(const std::string& run_dir) {
  const std::string marker = (fs::path(run_dir) / "checkpoints" / "last").string();
  if (!io::file_exists(marker)) return "";
  std::string name = io::read_file(marker);
  while (!name.empty() && (name.back() == '\n' || name.back() == ' ')) name.pop_back();
  return (fs::path(run_dir) / "checkpoints" / name).string();
}

void verify_model_dir(const std::string& dir, bool need_training_state) {
  ATTEND_CHECK(fs::is_directory(dir), "{}: not a model or checkpoint directory", dir);
  for (const char* f : kModelFiles)
    ATTEND_CHECK(io::file_exists(path(dir, f)), "{}: missing {} (not a complete checkpoint)", dir,
                 f);
  if (need_training_state)
    for (const char* f : {"optimizer.safetensors", "trainer_state.json"})
      ATTEND_CHECK(io::file_exists(path(dir, f)), "{}: missing {} (cannot resume from it)", dir, f);
  if (!io::file_exists(path(dir, "trainer_state.json"))) return;
  const nlohmann::json st = io::read_json_object(path(dir, "trainer_state.json"));
  if (need_training_state && st.contains("ema")) {
    ATTEND_CHECK(st["ema"].is_boolean(),
                 "{}: corrupt trainer_state.json: \"ema\" must be true or false", dir);
    if (st["ema"].get<bool>())
      ATTEND_CHECK(io::file_exists(path(dir, "train_weights.safetensors")),
                   "{}: missing train_weights.safetensors (cannot resume from it)", dir);
  }
  if (!st.contains("crc32")) return;
  ATTEND_CHECK(st["crc32"].is_object(),
               "{}: corrupt trainer_state.json: \"crc32\" must be an object", dir);
  for (const auto& [name, want] : st["crc32"].items()) {
    // Checksums name files of this directory only.
    ATTEND_CHECK(
        !name.empty() && name.find('/') == std::string::npos && name != "." && name != "..",
        "{}: corrupt trainer_state.json: checksum of '{}', not a file of the directory", dir, name);
    if (!io::file_exists(path(dir, name))) continue;
    const uint32_t got = io::crc32(io::read_file(path(dir, name)));
    ATTEND_CHECK(want.is_number_unsigned() && want.get<uint32_t>() == got,
                 "{}: {} is corrupt (checksum {} != recorded {})", dir, name, got, want.dump());
  }
}

void load_weights(const std::string& file,
                  const std::vector<std::pair<std::string, Tensor>>& into) {
  const io::SafeTensors st = io::load_safetensors(file);
  // int8 against fp32 first: a whole file of the other kind is one message, not the first
  // tensor that differs.
  bool file_int8 = false, model_int8 = false;
  for (const auto& [name, t] : st.tensors) file_int8 |= t.dtype() == DType::kI8;
  for (const auto& [name, t] : into) model_int8 |= t.dtype() == DType::kI8;
  ATTEND_CHECK(!model_int8 || file_int8,
               "{}: holds fp32 weights, but the directory's config.json says its weights are "
               "int8 (\"weights\": \"int8\"); write int8 models with attend quantize",
               file);
  for (auto [name, dst] : into) {
    const Tensor* t = st.find(name);
    const bool scale = name.size() > 13 && name.ends_with(".weight_scale");
    ATTEND_CHECK(t != nullptr || !scale,
                 "{}: missing the int8 scales '{}' (an int8 model holds one per linear weight; "
                 "quantize the fp32 model again with attend quantize)",
                 file, name);
    ATTEND_CHECK(t != nullptr, "{}: missing parameter '{}' (checkpoint and config disagree)", file,
                 name);
    ATTEND_CHECK(!(t->dtype() == DType::kI8 && dst.dtype() != DType::kI8),
                 "{}: parameter '{}' is {}: this is an int8 model (written by attend quantize), "
                 "but this command needs fp32 weights (give it the model it was quantized from)",
                 file, name, t->str());
    ATTEND_CHECK(t->shape() == dst.shape() && t->dtype() == dst.dtype(),
                 "{}: parameter '{}' is {} but the model expects {}", file, name, t->str(),
                 dst.str());
    dst.copy_from(*t);
  }
  ATTEND_CHECK(st.tensors.size() == into.size(),
               "{}: holds {} tensors but the model has {} parameters", file, st.tensors.size(),
               into.size());
}

void load_weights(const std::string& file, const nn::Module& model) {
  std::vector<std::pair<std::string, Tensor>> into;
  for (const auto& [name, v] : model.named_parameters()) into.emplace_back(name, v.value());
  load_weights(file, into);
}

data::Tokenizer read_tokenizer(const std::string& dir) {
  return data::Tokenizer::load(path(dir, "tokenizer.model"));
}

namespace {

// The model.* keys of a model directory's config.json.
io::Config read_model_keys(const std::string& dir) {
  const std::string file = path(dir, "config.json");
  return model_keys_of(io::read_json_object(file), file);
}

// The directory a model path names (resolve_model_dir without the verification).
std::string locate_model_dir(const std::string& p) {
  ATTEND_CHECK(fs::exists(p), "{}: no such model directory", p);
  if (io::file_exists(path(p, "model.safetensors"))) return p;
  if (io::file_exists(path(path(p, "best"), "model.safetensors"))) return path(p, "best");
  if (!last_checkpoint(p).empty()) return last_checkpoint(p);
  return p;
}

}  // namespace

std::string stored_precision(const std::string& dir) {
  const std::string file = path(dir, "config.json");
  const nlohmann::json all = io::read_json_object(file);
  if (!all.contains("weights")) return "fp32";
  const nlohmann::json& w = all["weights"];
  ATTEND_CHECK(w.is_string() && (w == "fp32" || w == "int8"),
               "{}: \"weights\" must be \"fp32\" or \"int8\", got {}", file, w.dump());
  return w.get<std::string>();
}

void set_precision(nn::Module& model, const std::string& dir, const std::string& precision,
                   const std::string& flag) {
  ATTEND_CHECK(
      precision.empty() || precision == "fp32" || precision == "bf16" || precision == "int8",
      "{}: expected fp32, bf16 or int8, got '{}'", flag, precision);
  const std::string stored = stored_precision(dir);
  if (precision.empty() || precision == stored) return;
  ATTEND_CHECK(stored == "fp32",
               "{} {}: {} is an {} model (written by attend quantize) and runs in {} only; give "
               "the fp32 model it was quantized from for another precision",
               flag, precision, dir, stored, stored);
  model.store_weights(precision == "bf16" ? DType::kBF16 : DType::kI8);
}

void set_device(nn::Module& model, const std::string& device, const std::string& flag,
                const std::string& precision_flag) {
  if (device.empty()) return;
  const Device d = parse_device(device, flag);
  if (d.is_cpu()) return;
  ATTEND_CHECK(model.weight_dtype() == DType::kF32,
               "{} {}: {} weights run on the CPU only; on the GPU use {} fp32 (and an fp32 model)",
               flag, device, model.weight_dtype() == DType::kI8 ? "int8" : "bf16", precision_flag);
  model.to(d);
}

nn::TransformerConfig read_model_config(const std::string& dir, const data::Tokenizer& tokenizer) {
  return model_config(read_model_keys(dir), 0, &tokenizer);
}

nn::Arch model_arch(const std::string& p) {
  const std::string dir = locate_model_dir(p);
  // a directory without config.json: verification names what is missing
  if (!io::file_exists(path(dir, "config.json"))) verify_model_dir(dir, false);
  return model_config(read_model_keys(dir), 8).arch;
}

std::string resolve_model_dir(const std::string& p) {
  const std::string dir = locate_model_dir(p);
  verify_model_dir(dir, false);
  return dir;
}

namespace {

// The family check of the loaders: a model of another family names the commands that take it.
void expect_arch(const std::string& dir, const nn::TransformerConfig& c, nn::Arch want,
                 const char* commands) {
  if (c.arch == want) return;
  const char* fits = c.arch == nn::Arch::kEncoderDecoder ? "attend translate"
                     : c.arch == nn::Arch::kDecoderOnly  ? "attend generate or attend eval-lm"
                                                         : "attend fill-mask or attend eval-lm";
  const char* article = c.arch == nn::Arch::kDecoderOnly ? "a" : "an";
  ATTEND_FAIL("{}: this is {} {} model, but {} take {} models (for this one: {})", dir, article,
              nn::arch_name(c.arch), commands, nn::arch_name(want), fits);
}

}  // namespace

namespace {

template <typename Loaded, typename Family>
Loaded load_family(const std::string& p, nn::Arch arch, const char* commands) {
  const std::string dir = resolve_model_dir(p);
  Loaded m;
  m.tokenizer = read_tokenizer(dir);
  const nn::TransformerConfig c = read_model_config(dir, m.tokenizer);
  expect_arch(dir, c, arch, commands);
  m.model = std::make_unique<Family>(c, 0);
  if (stored_precision(dir) == "int8") m.model->store_weights(DType::kI8);
  load_weights(path(dir, "model.safetensors"), *m.model);
  m.model->set_training(false);
  m.dir = dir;
  return m;
}

}  // namespace

LoadedModel load_model_dir(const std::string& p) {
  return load_family<LoadedModel, nn::EncoderDecoder>(p, nn::Arch::kEncoderDecoder,
                                                      "translate and score");
}

LoadedLanguageModel load_language_model_dir(const std::string& p) {
  return load_family<LoadedLanguageModel, nn::DecoderOnly>(p, nn::Arch::kDecoderOnly,
                                                           "generate and eval-lm");
}

LoadedMaskedModel load_masked_model_dir(const std::string& p) {
  LoadedMaskedModel m = load_family<LoadedMaskedModel, nn::EncoderOnly>(
      p, nn::Arch::kEncoderOnly, "fill-mask, eval-lm and embed");
  const nlohmann::json config = io::read_json_object(path(m.dir, "config.json"));
  if (config.contains("converted_from") && config["converted_from"].is_object()) {
    const nlohmann::json& c = config["converted_from"];
    m.mlm_head = !c.contains("mlm_head") || c["mlm_head"] != false;
  }
  return m;
}

void require_token_head(const LoadedMaskedModel& m, const std::string& command) {
  ATTEND_CHECK(m.mlm_head,
               "{}: {} was converted without a masked-LM head (its config.json says "
               "\"mlm_head\": false), so it cannot predict tokens; attend embed takes it",
               command, m.dir);
}

}  // namespace attend::models
