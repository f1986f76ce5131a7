// Configuration: a schema of documented, typed keys (dotted names such as "model.d_model"),
// values set from defaults, then a YAML file (nested maps flatten to dotted keys), then
// command-line overrides ("--model.d_model 256" or "--model.d_model=256"). Unknown keys and
// values of the wrong type are errors naming the key and where the value came from
// (file:line, or "command line").
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace attend::io {

enum class KeyType { kInt, kFloat, kBool, kString };

struct KeySpec {
  std::string name;
  KeyType type;
  std::string default_value;  // as text; "" for strings means empty
  std::string doc;
};

class Config {
 public:
  explicit Config(std::vector<KeySpec> schema);

  /// Sets a key from text, checking its type; `origin` names where it came from.
  void set(const std::string& key, const std::string& value, const std::string& origin);
  /// Reads a YAML file of nested maps with scalar leaves.
  void load_yaml(const std::string& path);
  /// Applies "--key value" / "--key=value" pairs; returns the arguments that are not keys of
  /// the schema (for the caller's own flags) -- unknown "--x" options are returned too.
  std::vector<std::string> apply_args(const std::vector<std::string>& args);

  int64_t get_int(const std::string& key) const;
  double get_float(const std::string& key) const;
  bool get_bool(const std::string& key) const;
  const std::string& get_string(const std::string& key) const;
  bool has(const std::string& key) const { return values_.count(key) != 0; }
  /// False when the key holds no value (an empty default, or set to "").
  bool is_set(const std::string& key) const;
  /// Where the current value came from ("default", "file.yaml:12", "command line").
  const std::string& origin(const std::string& key) const;

  /// Help text: every key with type, default and documentation.
  std::string help() const;
  /// Every key and value as a flat JSON object (for config.json in checkpoints).
  std::string to_json() const;
  /// Sets keys from a flat JSON object written by to_json().
  void load_json(const std::string& json_text, const std::string& origin);
  const std::vector<KeySpec>& schema() const { return schema_; }

 private:
  const KeySpec& spec(const std::string& key, const std::string& origin) const;
  std::vector<KeySpec> schema_;
  std::map<std::string, std::string> values_;
  std::map<std::string, std::string> origins_;
};

}  // namespace attend::io
