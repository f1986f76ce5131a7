// `attend quantize`: writes an int8 copy of a model directory (linear layers quantized per output
// row, nn::Module::store_weights) that translate, generate and serve load directly.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "apps/cli.h"
#include "core/error.h"
#include "io/file.h"
#include "models/model_dir.h"
#include "train/checkpoint.h"

namespace attend::apps {
namespace {

namespace fs = std::filesystem;

struct QuantizeArgs {
  std::string model, output, precision = "int8";
  int threads = 0;
};

int64_t file_bytes(const std::string& dir) {
  return static_cast<int64_t>(fs::file_size(fs::path(dir) / "model.safetensors"));
}

template <typename Loaded>
void quantize_and_save(const Loaded& m, const std::string& out) {
  m.model->store_weights(DType::kI8);
  nlohmann::ordered_json config;
  const std::string file = (fs::path(m.dir) / "config.json").string();
  try {
    config = nlohmann::ordered_json::parse(io::read_file(file));
  } catch (const nlohmann::json::exception& e) {
    ATTEND_FAIL("{}: corrupt: {}", file, e.what());
  }
  config["weights"] = "int8";
  train::TrainerState state;  // what it was trained for, kept for the record
  if (io::file_exists((fs::path(m.dir) / "trainer_state.json").string()))
    state = train::load_state(m.dir);
  // Written into OUT.tmp and renamed into place: an interrupted run leaves no OUT.
  train::save_checkpoint(out, *m.model, nullptr, config.dump(2), m.tokenizer, state);
}

int quantize(const QuantizeArgs& a) {
  apply_threads(a.threads);
  ATTEND_CHECK(a.precision == "int8", "quantize: --precision: expected int8, got '{}'",
               a.precision);
  ATTEND_CHECK(!fs::exists(a.output),
               "quantize: -o {}: already exists (choose a new directory; nothing was written)",
               a.output);
  const std::string dir = models::resolve_model_dir(a.model);
  const std::string stored = models::stored_precision(dir);
  ATTEND_CHECK(stored == "fp32", "quantize: {} is already an {} model", dir, stored);
  switch (models::model_arch(dir)) {
    case nn::Arch::kEncoderDecoder:
      quantize_and_save(models::load_model_dir(dir), a.output);
      break;
    case nn::Arch::kDecoderOnly:
      quantize_and_save(models::load_language_model_dir(dir), a.output);
      break;
    case nn::Arch::kEncoderOnly:
      quantize_and_save(models::load_masked_model_dir(dir), a.output);
      break;
  }
  std::printf("quantize: %s (%.1f MiB) -> %s (%.1f MiB, int8 linear layers)\n", dir.c_str(),
              static_cast<double>(file_bytes(dir)) / (1 << 20), a.output.c_str(),
              static_cast<double>(file_bytes(a.output)) / (1 << 20));
  return 0;
}

}  // namespace

void add_quantize(CLI::App& root, int& exit_code) {
  auto a = std::make_shared<QuantizeArgs>();
  CLI::App* c = root.add_subcommand(
      "quantize", "write an int8 copy of a model (linear layers quantized per output row)");
  c->footer(
      "attend quantize -m MODEL -o OUT_DIR [--precision int8] writes a new model directory\n"
      "(atomically) that translate, generate and serve run in int8.");
  c->add_option("-m,--model", a->model, "model, checkpoint or run directory (fp32)")
      ->required()
      ->option_text("MODEL");
  c->add_option("-o,--output", a->output, "the model directory to write (must not exist)")
      ->required()
      ->option_text("OUT_DIR");
  c->add_option("--precision", a->precision, "the stored precision")
      ->check(CLI::IsMember({"int8"}))
      ->capture_default_str();
  add_threads_flag(*c, a->threads);
  c->callback([a, &exit_code] { exit_code = quantize(*a); });
}

}  // namespace attend::apps
