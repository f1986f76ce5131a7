// The documented keys of `attend train` (configs/*.yaml, overridable as --section.key value)
// (the model.* keys come from models/config.h).
#pragma once
#include "io/config.h"

namespace attend::train {

/// Every training key with its type, default and documentation.
io::Config train_config();

}  // namespace attend::train
