// JSON files: config.json, trainer_state.json and the like.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace attend::io {

/// A file holding one JSON object. Errors name the file: "corrupt or incomplete: <parser's
/// message>" for text that does not parse, "corrupt: not a JSON object" for another value.
nlohmann::json read_json_object(const std::string& file);

}  // namespace attend::io
