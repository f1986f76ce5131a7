// Request parsing and reply building for the HTTP API (see api.h).
#include "serve/api.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/utf8.h"

namespace attend::serve {
namespace {

using json = nlohmann::json;

[[noreturn]] void bad(const std::string& message) { throw ApiError(400, "bad_request", message); }

int64_t integer_field(const json& v, const std::string& name, int64_t lo, int64_t hi) {
  if (!v.is_number_integer() && !v.is_number_unsigned()) bad(name + ": expected an integer");
  if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
    bad(name + ": expected " + std::to_string(lo) + ".." + std::to_string(hi));
  const int64_t x = v.get<int64_t>();
  if (x < lo || x > hi)
    bad(name + ": expected " + std::to_string(lo) + ".." + std::to_string(hi) + ", got " +
        std::to_string(x));
  return x;
}

double number_field(const json& v, const std::string& name) {
  if (!v.is_number()) bad(name + ": expected a number");
  const double x = v.get<double>();
  if (!std::isfinite(x)) bad(name + ": expected a finite number");
  return x;
}

bool bool_field(const json& v, const std::string& name) {
  if (!v.is_boolean()) bad(name + ": expected true or false");
  return v.get<bool>();
}

// One text of a request: a string of at most max_sentence_bytes; translation texts (one_line)
// must also be one sentence without line breaks, prompts may hold them.
std::string text_field(const json& v, const std::string& name, const Limits& limits,
                       bool one_line) {
  if (!v.is_string()) bad(name + ": expected a string");
  std::string s = v.get<std::string>();
  if (static_cast<int64_t>(s.size()) > limits.max_sentence_bytes)
    bad(name + ": " + std::to_string(s.size()) + " bytes, more than the server's limit of " +
        std::to_string(limits.max_sentence_bytes));
  // The JSON parser has checked the encoding.
  if (one_line && (s.find('\n') != std::string::npos || s.find('\r') != std::string::npos))
    bad(name + ": a text is one sentence without line breaks");
  return s;
}

// "key": a string or a non-empty list of at most max_sentences strings (`noun` counts them in
// the message), each checked by text_field as key or key[i].
std::vector<std::string> texts_field(const json& v, const std::string& key, const char* noun,
                                     const Limits& limits, bool one_line) {
  if (!v.is_array()) return {text_field(v, key, limits, one_line)};
  if (v.empty()) bad(key + ": the list is empty");
  if (static_cast<int64_t>(v.size()) > limits.max_sentences)
    bad(key + ": " + std::to_string(v.size()) + " " + noun + ", more than the server's limit of " +
        std::to_string(limits.max_sentences));
  std::vector<std::string> out;
  for (size_t i = 0; i < v.size(); ++i)
    out.push_back(text_field(v[i], key + "[" + std::to_string(i) + "]", limits, one_line));
  return out;
}

uint64_t seed_field(const json& v) {
  if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<int64_t>() >= 0))
    bad("seed: expected an integer >= 0");
  return v.get<uint64_t>();
}

double top_p_field(const json& v) {
  const double p = number_field(v, "top_p");
  if (p <= 0 || p > 1) bad("top_p: expected a number in (0, 1]");
  return p;
}

// A request body: within the size limit (413), valid JSON (the parser checks UTF-8), an object.
json parse_body(const std::string& body, const Limits& limits) {
  if (static_cast<int64_t>(body.size()) > limits.max_body_bytes)
    throw ApiError(413, "too_large",
                   "the body has " + std::to_string(body.size()) +
                       " bytes, more than the server's limit of " +
                       std::to_string(limits.max_body_bytes));
  json j;
  try {
    j = json::parse(body);
  } catch (const json::exception& e) {
    bad(std::string("the body is not valid JSON: ") + e.what());
  }
  if (!j.is_object()) bad("the body must be a JSON object");
  return j;
}

// The fields the translation and completion requests share; false: `key` is not one of them.
template <class Options>
bool shared_field(const std::string& key, const json& v, std::string& model, Options& o) {
  if (key == "model") {
    if (!v.is_string()) bad("model: expected a string");
    model = v.get<std::string>();
  } else if (key == "beam") {
    o.beam = integer_field(v, key, 1, 64);
  } else if (key == "alpha") {
    o.alpha = number_field(v, key);
    if (o.alpha < 0) bad("alpha: expected >= 0");
  } else if (key == "top_k") {
    o.top_k = integer_field(v, key, 0, INT32_MAX);
  } else if (key == "top_p") {
    o.top_p = top_p_field(v);
  } else if (key == "seed") {
    o.seed = seed_field(v);
  } else {
    return false;
  }
  return true;
}

}  // namespace

TranslateRequest parse_translate(const std::string& body, const Limits& limits) {
  const json j = parse_body(body, limits);
  TranslateRequest r;
  decode::SearchOptions& o = r.search;
  bool have_text = false;
  for (const auto& [key, v] : j.items()) {
    if (shared_field(key, v, r.model, o)) continue;
    if (key == "text") {
      have_text = true;
      r.texts = texts_field(v, key, "texts", limits, true);
    } else if (key == "n_best") {
      o.n_best = integer_field(v, key, 1, 64);
    } else if (key == "max_extra") {
      o.max_extra = integer_field(v, key, 0, 1024);
    } else if (key == "min_length") {
      o.min_length = integer_field(v, key, 0, 1024);
    } else if (key == "sample") {
      o.sample = bool_field(v, key);
    } else if (key == "temperature") {
      o.temperature = number_field(v, key);
      if (o.temperature <= 0) bad("temperature: expected > 0");
    } else if (key == "attention") {
      r.attention = bool_field(v, key);
    } else if (key == "precision") {
      if (!v.is_string()) bad("precision: expected a string");
      // The server holds each model in the precision it was loaded in (attend serve
      // --precision); a request may only name it (checked against the model when served).
      r.precision = v.get<std::string>();
      if (r.precision != "fp32" && r.precision != "bf16" && r.precision != "int8")
        bad("precision: expected fp32, bf16 or int8, got '" + r.precision + "'");
    } else {
      bad("unknown field '" + key + "'");
    }
  }
  if (!have_text) bad("text: required (a string or a list of strings)");
  if (o.sample) o.beam = 1;
  try {
    o.validate();
  } catch (const Error& e) {  // name the request's fields, not the library's
    std::string m = e.what();
    if (const auto at = m.find("search: "); at != std::string::npos) m.erase(at, 8);
    if (const auto at = m.rfind(" ("); at != std::string::npos && m.back() == ')')
      m.erase(at);  // the library's source location means nothing to a client
    bad(m);
  }
  return r;
}

CompletionRequest parse_completion(const std::string& body, const Limits& limits) {
  const json j = parse_body(body, limits);
  CompletionRequest r;
  decode::GenerateOptions& o = r.generate;
  o.max_new = 16;  // the completions API's default
  o.temperature = 1.0;
  o.seed = 0;
  bool have_prompt = false;
  for (const auto& [key, v] : j.items()) {
    if (shared_field(key, v, r.model, o)) continue;
    if (key == "prompt") {
      have_prompt = true;
      r.prompts = texts_field(v, key, "prompts", limits, false);  // line breaks allowed
    } else if (key == "max_tokens") {
      o.max_new = integer_field(v, key, 1, 1 << 20);
    } else if (key == "temperature") {
      o.temperature = number_field(v, key);
      if (o.temperature < 0) bad("temperature: expected >= 0 (0: the most likely token)");
    } else if (key == "stream") {
      r.stream = bool_field(v, key);
    } else if (key == "n") {
      o.n = integer_field(v, key, 1, 64);
    } else {
      bad("unknown field '" + key + "'");
    }
  }
  if (!have_prompt) bad("prompt: required (a string or a list of strings)");
  if (o.beam > 1 && o.n > o.beam) bad("n: at most the beam (" + std::to_string(o.beam) + ")");
  if (o.beam == 1 && o.temperature == 0 && o.n > 1)
    bad("n: greedy search (temperature 0) gives one completion; draw (temperature > 0) or search "
        "with a beam");
  return r;
}

EmbeddingRequest parse_embeddings(const std::string& body, const Limits& limits) {
  const json j = parse_body(body, limits);
  EmbeddingRequest r;
  bool have_input = false;
  for (const auto& [key, v] : j.items()) {
    if (key == "model") {
      if (!v.is_string()) bad("model: expected a string");
      r.model = v.get<std::string>();
    } else if (key == "input") {
      have_input = true;
      r.texts = texts_field(v, key, "inputs", limits, false);
    } else if (key == "encoding_format") {
      if (!v.is_string() || v.get<std::string>() != "float")
        bad("encoding_format: only \"float\" is supported");
    } else if (key == "pooling") {
      if (!v.is_string() || (v.get<std::string>() != "mean" && v.get<std::string>() != "cls"))
        bad("pooling: expected \"mean\" or \"cls\"");
      r.pooling = v.get<std::string>();
    } else if (key == "normalize") {
      r.normalize = bool_field(v, key);
    } else if (key == "user") {
      if (!v.is_string()) bad("user: expected a string");
    } else {
      bad("unknown field '" + key + "'");
    }
  }
  if (!have_input) bad("input: required (a string or a list of strings)");
  return r;
}

std::string embeddings_reply(const std::string& model, const std::vector<float>& vectors,
                             int64_t dim, int64_t prompt_tokens) {
  json data = json::array();
  const auto D = static_cast<size_t>(dim);
  for (size_t i = 0; D > 0 && i < vectors.size() / D; ++i)
    data.push_back(
        {{"object", "embedding"},
         {"index", i},
         {"embedding",
          std::vector<float>(vectors.begin() + static_cast<std::ptrdiff_t>(i * D),
                             vectors.begin() + static_cast<std::ptrdiff_t>((i + 1) * D))}});
  const json reply = {
      {"object", "list"},
      {"data", std::move(data)},
      {"model", model},
      {"usage", {{"prompt_tokens", prompt_tokens}, {"total_tokens", prompt_tokens}}}};
  return reply.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string completion_reply(const std::string& id, const std::string& model, int64_t created,
                             const std::vector<CompletionOut>& choices) {
  json list = json::array();
  int64_t prompt = 0, completion = 0;
  for (size_t i = 0; i < choices.size(); ++i) {
    list.push_back(
        {{"text", choices[i].text}, {"index", i}, {"finish_reason", choices[i].finish_reason}});
    prompt += choices[i].prompt_tokens;
    completion += choices[i].completion_tokens;
  }
  const json reply = {{"id", id},
                      {"object", "text_completion"},
                      {"created", created},
                      {"model", model},
                      {"choices", std::move(list)},
                      {"usage",
                       {{"prompt_tokens", prompt},
                        {"completion_tokens", completion},
                        {"total_tokens", prompt + completion}}}};
  return reply.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string completion_event(const std::string& id, const std::string& model, int64_t created,
                             size_t index, const std::string& text,
                             const std::string& finish_reason) {
  const json event = {
      {"id", id},
      {"object", "text_completion"},
      {"created", created},
      {"model", model},
      {"choices", json::array({{{"text", text},
                                {"index", index},
                                {"finish_reason",
                                 finish_reason.empty() ? json(nullptr) : json(finish_reason)}}})}};
  return "data: " + event.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
}

std::string translate_reply(const std::string& model,
                            const std::vector<std::vector<TranslationOut>>& translations,
                            int64_t source_tokens, int64_t target_tokens, double time_ms) {
  json out = json::array();
  for (const auto& nbest : translations) {
    json list = json::array();
    for (const TranslationOut& t : nbest) {
      json item = {{"text", t.text}, {"score", t.score}, {"tokens", t.tokens}};
      if (t.attention) {
        // Four decimals are what a heatmap can show, and keep the body small.
        json layers = json::array();
        for (const auto& layer : t.attention->weights) {
          json heads = json::array();
          for (const auto& head : layer) {
            json rows = json::array();
            for (const auto& row : head) {
              json cells = json::array();
              for (const float w : row) cells.push_back(std::round(w * 1e4) / 1e4);
              rows.push_back(std::move(cells));
            }
            heads.push_back(std::move(rows));
          }
          layers.push_back(std::move(heads));
        }
        item["attention"] = {{"source_tokens", t.attention->source},
                             {"target_tokens", t.attention->target},
                             {"layers", std::move(layers)}};
      }
      list.push_back(std::move(item));
    }
    out.push_back(std::move(list));
  }
  const json reply = {
      {"model", model},
      {"translations", std::move(out)},
      {"usage", {{"source_tokens", source_tokens}, {"target_tokens", target_tokens}}},
      {"time_ms", time_ms}};
  // Pieces and texts are valid UTF-8 (the tokenizer decodes to UTF-8); replace anything else.
  return reply.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string error_body(const std::string& code, const std::string& message) {
  return json{{"error", {{"code", code}, {"message", message}}}}.dump(
      -1, ' ', false, json::error_handler_t::replace);
}

bool same_key(const std::string& given, const std::string& key) {
  // Every byte of both is read whatever they hold; only the lengths decide the time.
  const size_t n = std::max(given.size(), key.size());
  unsigned char diff = given.size() == key.size() ? 0 : 1;
  for (size_t i = 0; i < n; ++i) {
    const unsigned char a = i < given.size() ? static_cast<unsigned char>(given[i]) : 0;
    const unsigned char b = i < key.size() ? static_cast<unsigned char>(key[i]) : 0;
    diff |= static_cast<unsigned char>(a ^ b);
  }
  return diff == 0;
}

}  // namespace attend::serve
