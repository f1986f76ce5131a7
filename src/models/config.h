// The model keys of a configuration (model.*: what config.json in every model directory holds)
// and their conversion to a typed model configuration. Training adds its own keys to these.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/tokenizer.h"
#include "io/config.h"
#include "nn/transformer.h"

namespace attend::models {

/// Every model.* key with its type, default and documentation.
std::vector<io::KeySpec> model_keys();
/// The model.* keys of a config.json object (its other keys are training's and are ignored);
/// errors name `file`.
io::Config model_keys_of(const nlohmann::json& config, const std::string& file);
/// The model configuration: model.preset, refined by any model.* key that is set; vocabulary
/// sizes and special ids from the tokenizer (or `vocab` with the default ids when it is null).
nn::TransformerConfig model_config(const io::Config& c, int64_t vocab,
                                   const data::Tokenizer* tokenizer = nullptr);

}  // namespace attend::models
