// Configuration (see config.h).
#include "io/config.h"
#include "io/file.h"
#include "io/json.h"

#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"

namespace attend::io {
namespace {

const char* type_name(KeyType t) {
  switch (t) {
    case KeyType::kInt: return "int";
    case KeyType::kFloat: return "float";
    case KeyType::kBool: return "bool";
    case KeyType::kString: return "string";
  }
  return "?";
}

bool parse_int(const std::string& s, int64_t* out) {
  if (s.empty()) return false;
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (errno != 0 || *end != '\0') return false;
  *out = v;
  return true;
}

bool parse_float(const std::string& s, double* out) {
  if (s.empty()) return false;
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (*end != '\0') return false;
  *out = v;
  return true;
}

bool parse_bool(const std::string& s, bool* out) {
  if (s == "true" || s == "yes" || s == "on" || s == "1") *out = true;
  else if (s == "false" || s == "no" || s == "off" || s == "0") *out = false;
  else return false;
  return true;
}

void flatten(const YAML::Node& node, const std::string& prefix, const std::string& path,
             Config& config) {
  for (const auto& kv : node) {
    // A key must be text: YAML also allows a list or a map as a key ("? {a: 1}: 2").
    ATTEND_CHECK(kv.first.IsScalar(),
                 "{}:{}: a key under '{}' must be plain text, not a list or a map", path,
                 kv.first.Mark().line + 1, prefix.empty() ? "(top level)" : prefix);
    const std::string key = kv.first.Scalar();
    const std::string full = prefix.empty() ? key : prefix + "." + key;
    const YAML::Node& v = kv.second;
    const std::string where = path + ":" + std::to_string(v.Mark().line + 1);
    if (v.IsMap()) {
      flatten(v, full, path, config);
    } else if (v.IsScalar()) {
      config.set(full, v.Scalar(), where);
    } else if (v.IsNull()) {
      config.set(full, "", where);
    } else {
      ATTEND_FAIL("{}: key '{}' must be a scalar value", where, full);
    }
  }
}

}  // namespace

Config::Config(std::vector<KeySpec> schema) : schema_(std::move(schema)) {
  for (const auto& k : schema_) {
    values_[k.name] = k.default_value;
    origins_[k.name] = "default";
  }
}

const KeySpec& Config::spec(const std::string& key, const std::string& origin) const {
  for (const auto& k : schema_)
    if (k.name == key) return k;
  // Suggest keys sharing the last component, the usual typo being the section.
  std::string hint;
  const std::string leaf = key.substr(key.rfind('.') == std::string::npos ? 0 : key.rfind('.') + 1);
  for (const auto& k : schema_)
    if (k.name.size() >= leaf.size() &&
        k.name.compare(k.name.size() - leaf.size(), leaf.size(), leaf) == 0)
      hint += (hint.empty() ? " (did you mean " : ", ") + k.name;
  if (!hint.empty()) hint += "?)";
  ATTEND_FAIL("{}: unknown config key '{}'{}", origin, key, hint);
}

void Config::set(const std::string& key, const std::string& value, const std::string& origin) {
  const KeySpec& k = spec(key, origin);
  if (value.empty()) {  // unset: "use the default of whatever the key refines" (e.g. a preset)
    values_[key] = value;
    origins_[key] = origin;
    return;
  }
  int64_t i;
  double f;
  bool b;
  switch (k.type) {
    case KeyType::kInt:
      ATTEND_CHECK(parse_int(value, &i), "{}: key '{}' expects an integer, got '{}'", origin, key, value);
      break;
    case KeyType::kFloat:
      ATTEND_CHECK(parse_float(value, &f), "{}: key '{}' expects a number, got '{}'", origin, key, value);
      break;
    case KeyType::kBool:
      ATTEND_CHECK(parse_bool(value, &b), "{}: key '{}' expects true or false, got '{}'", origin, key, value);
      break;
    case KeyType::kString:
      break;
  }
  values_[key] = value;
  origins_[key] = origin;
}

void Config::load_yaml(const std::string& path) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    ATTEND_FAIL("{}: cannot open config file", path);
  } catch (const YAML::Exception& e) {
    ATTEND_FAIL("{}:{}: invalid YAML: {}", path, e.mark.line + 1, e.msg);
  }
  if (root.IsNull()) return;
  ATTEND_CHECK(root.IsMap(), "{}: a config file must be a map of keys", path);
  flatten(root, "", path, *this);
}

std::vector<std::string> Config::apply_args(const std::vector<std::string>& args) {
  std::vector<std::string> rest;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.rfind("--", 0) != 0) {
      rest.push_back(a);
      continue;
    }
    std::string key = a.substr(2), value;
    const size_t eq = key.find('=');
    const bool inline_value = eq != std::string::npos;
    if (inline_value) {
      value = key.substr(eq + 1);
      key = key.substr(0, eq);
    }
    bool known = false;
    for (const auto& k : schema_) known = known || k.name == key;
    if (!known) {
      rest.push_back(a);
      continue;
    }
    if (!inline_value) {
      ATTEND_CHECK(i + 1 < args.size(), "command line: --{} needs a value", key);
      value = args[++i];
    }
    set(key, value, "command line");
  }
  return rest;
}

bool Config::is_set(const std::string& key) const {
  return !values_.at(spec(key, "config").name).empty();
}

int64_t Config::get_int(const std::string& key) const {
  int64_t v = 0;
  ATTEND_CHECK(spec(key, "config").type == KeyType::kInt && parse_int(values_.at(key), &v),
               "config: key '{}' is not an integer", key);
  return v;
}

double Config::get_float(const std::string& key) const {
  double v = 0;
  ATTEND_CHECK(parse_float(values_.at(spec(key, "config").name), &v),
               "config: key '{}' is not a number", key);
  return v;
}

bool Config::get_bool(const std::string& key) const {
  bool v = false;
  ATTEND_CHECK(parse_bool(values_.at(spec(key, "config").name), &v),
               "config: key '{}' is not a bool", key);
  return v;
}

const std::string& Config::get_string(const std::string& key) const {
  return values_.at(spec(key, "config").name);
}

const std::string& Config::origin(const std::string& key) const {
  return origins_.at(spec(key, "config").name);
}

std::string Config::help() const {
  std::ostringstream os;
  std::string section;
  for (const auto& k : schema_) {
    const std::string sec = k.name.substr(0, k.name.find('.'));
    if (sec != section) {
      os << "\n" << sec << ":\n";
      section = sec;
    }
    os << "  --" << k.name << " <" << type_name(k.type) << ">";
    os << "  (default: " << (k.default_value.empty() ? "none" : k.default_value) << ")\n";
    os << "      " << k.doc << "\n";
  }
  return os.str();
}

std::string Config::to_json() const {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  for (const auto& k : schema_) j[k.name] = values_.at(k.name);
  return j.dump(2) + "\n";
}

void Config::load_json(const std::string& text, const std::string& origin) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    ATTEND_FAIL("{}: not valid JSON: {}", origin, e.what());
  }
  ATTEND_CHECK(j.is_object(), "{}: expected a JSON object", origin);
  for (const auto& [k, v] : j.items()) {
    ATTEND_CHECK(v.is_string(), "{}: key '{}' must be a string", origin, k);
    set(k, v.get<std::string>(), origin);
  }
}

nlohmann::json read_json_object(const std::string& file) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(file));
  } catch (const nlohmann::json::exception& e) {
    ATTEND_FAIL("{}: corrupt or incomplete: {}", file, e.what());
  }
  ATTEND_CHECK(j.is_object(), "{}: corrupt: not a JSON object", file);
  return j;
}

}  // namespace attend::io
