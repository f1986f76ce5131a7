// libFuzzer target: the HTTP API's request bodies (serve/api.h). Any bytes must either parse
// into a request whose options pass validation or throw ApiError with a 4xx status.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "serve/api.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string body(reinterpret_cast<const char*>(data), size);
  attend::serve::Limits limits;
  limits.max_body_bytes = 1 << 16;
  limits.max_sentences = 8;
  limits.max_sentence_bytes = 256;
  try {
    const auto r = attend::serve::parse_translate(body, limits);
    if (r.texts.empty() || static_cast<int64_t>(r.texts.size()) > limits.max_sentences)
      std::abort();
    r.search.validate();  // what was accepted is valid
  } catch (const attend::serve::ApiError& e) {
    if (e.status() < 400 || e.status() > 499) std::abort();
  }
  try {
    const auto r = attend::serve::parse_completion(body, limits);
    if (r.prompts.empty()) std::abort();
    r.generate.validate();
  } catch (const attend::serve::ApiError& e) {
    if (e.status() < 400 || e.status() > 499) std::abort();
  }
  try {
    const auto r = attend::serve::parse_embeddings(body, limits);
    if (r.texts.empty() || static_cast<int64_t>(r.texts.size()) > limits.max_sentences ||
        (r.pooling != "mean" && r.pooling != "cls"))
      std::abort();
  } catch (const attend::serve::ApiError& e) {
    if (e.status() < 400 || e.status() > 499) std::abort();
  }
  return 0;
}
