// The documented keys of `attend train` (configs/*.yaml, overridable as --section.key value)
// and their conversion to the model configuration.
#pragma once
#include "io/config.h"
#include "nn/transformer.h"

namespace attend::train {

/// Every training key with its type, default and documentation.
io::Config train_config();
/// The model configuration: model.preset, refined by any model.* key that is set; vocabulary
/// sizes from the tokenizer.
nn::TransformerConfig model_config(const io::Config& c, int64_t vocab_size);

}  // namespace attend::train
