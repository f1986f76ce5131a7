// libFuzzer target: configuration files. The first byte picks what the rest is:
//   0: a training YAML file (every key of `attend train`), read and typed as `attend train` does;
//   1: a model directory's config.json, read into the model keys and a model configuration;
//   2: a checkpoint's trainer_state.json, checked (verify_model_dir) and loaded (load_state).
// Every input either loads or throws attend::Error naming the file or key.
#include <cstdint>
#include <filesystem>
#include <string>

#include "common.h"
#include "core/error.h"
#include "io/config.h"
#include "models/config.h"
#include "models/model_dir.h"
#include "train/checkpoint.h"
#include "train/options.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    switch (data[0] % 3) {
      case 0: {
        attend::io::Config c = attend::train::train_config();
        c.load_yaml(attend::fuzz::write("config.yaml", text));
        const attend::train::TrainOptions o = attend::train::TrainOptions::from_config(c);
        (void)o;
        (void)attend::models::model_config(c, 64);
        break;
      }
      case 1: {
        attend::io::Config c(attend::models::model_keys());
        c.load_json(text, "config.json");
        (void)attend::models::model_config(c, 64);
        break;
      }
      default: {
        const std::string dir = attend::fuzz::scratch() + "/checkpoint";
        std::filesystem::create_directories(dir);
        for (const char* f : {"model.safetensors", "config.json", "tokenizer.model"})
          attend::fuzz::write(std::string("checkpoint/") + f, "x");
        attend::fuzz::write("checkpoint/trainer_state.json", text);
        try {
          attend::models::verify_model_dir(dir, false);
        } catch (const attend::Error&) {
        }
        (void)attend::train::load_state(dir);
        break;
      }
    }
  } catch (const attend::Error&) {
  }
  return 0;
}
