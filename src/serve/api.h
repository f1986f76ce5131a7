// The HTTP API's requests and replies, apart from any socket: bodies are parsed and validated
// here (every field's type and range, unknown fields, the request limits), so the parsers of
// untrusted input can be tested and fuzzed on their own. A bad request becomes an ApiError
// carrying its HTTP status and a message naming the field; the reply is
// {"error": {"code", "message"}}.
#pragma once
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "decode/generator.h"
#include "decode/session.h"

namespace attend::serve {

/// A request the server refuses: HTTP status, a short machine-readable code, a message.
class ApiError : public std::runtime_error {
 public:
  ApiError(int status, std::string code, const std::string& message)
      : std::runtime_error(message), status_(status), code_(std::move(code)) {}
  int status() const { return status_; }
  const std::string& code() const { return code_; }

 private:
  int status_;
  std::string code_;
};

/// What one request may ask for (the server's flags).
struct Limits {
  int64_t max_body_bytes = 1 << 20;   // larger bodies: 413
  int64_t max_sentences = 64;         // texts per request: 400
  int64_t max_sentence_bytes = 4096;  // bytes per text: 400 (before tokenizing)
};

/// POST /v1/translate, parsed.
struct TranslateRequest {
  std::string model;               // "" when not given (the server's only or first model)
  std::vector<std::string> texts;  // one or more sentences ("text": a string or a list)
  decode::SearchOptions search;    // the request's decoding options, validated
  bool attention = false;          // add the best translation's encoder-attention weights
  std::string precision;           // "" or the precision the client expects the model to run in
};

/// Parses and validates a translate body; throws ApiError (400 for bad JSON, types, ranges,
/// unknown fields or too many / too long texts). Defaults are `attend translate`'s.
TranslateRequest parse_translate(const std::string& body, const Limits& limits);

/// Encoder-attention weights of one translation (decode::cross_attention): weights[l][h][t][s]
/// is how much target position t (the one that emits target[t]; the last emits "</s>") of
/// layer l, head h reads source subword s.
struct AttentionOut {
  std::vector<std::string> source;  // the encoder's subword pieces
  std::vector<std::string> target;  // the translation's pieces, then "</s>"
  std::vector<std::vector<std::vector<std::vector<float>>>> weights;
};

/// One translation in a reply.
struct TranslationOut {
  std::string text;
  double score = 0;
  std::vector<std::string> tokens;  // target subword pieces
  std::optional<AttentionOut> attention;
};

/// The reply body of a translate request.
std::string translate_reply(const std::string& model,
                            const std::vector<std::vector<TranslationOut>>& translations,
                            int64_t source_tokens, int64_t target_tokens, double time_ms);

/// POST /v1/completions (decoder-only models), parsed: the fields of the completions API that
/// LLM users know (prompt, max_tokens, temperature, top_p, seed, stream), plus top_k.
struct CompletionRequest {
  std::string model;
  std::vector<std::string> prompts;  // "prompt": a string or a list
  decode::GenerateOptions generate;  // max_new = max_tokens; stop_at_eos; beam, alpha, n
  bool stream = false;               // server-sent events, one per token
};

/// Parses and validates a completions body; throws ApiError as parse_translate does.
CompletionRequest parse_completion(const std::string& body, const Limits& limits);

/// One finished completion: its text, why it ended ("stop": the end-of-text token; "length":
/// max_tokens or the model's context), and its token counts.
struct CompletionOut {
  std::string text;
  std::string finish_reason;
  int64_t prompt_tokens = 0, completion_tokens = 0;
};

/// The reply body of a completions request (non-streaming).
std::string completion_reply(const std::string& id, const std::string& model, int64_t created,
                             const std::vector<CompletionOut>& choices);
/// One server-sent event of a streamed completion: "data: {...}\n\n" with a text piece of
/// choice `index`, or (finish_reason non-empty) its end.
std::string completion_event(const std::string& id, const std::string& model, int64_t created,
                             size_t index, const std::string& text,
                             const std::string& finish_reason);

/// POST /v1/embeddings (encoder-only models), parsed: OpenAI's fields (input, model,
/// encoding_format "float"), plus attend's pooling ("mean" or "cls") and normalize (default
/// true: unit length, as OpenAI's embeddings are).
struct EmbeddingRequest {
  std::string model;
  std::vector<std::string> texts;  // "input": a string or a list
  std::string pooling = "mean";
  bool normalize = true;
};

/// Parses and validates an embeddings body; throws ApiError as parse_translate does.
EmbeddingRequest parse_embeddings(const std::string& body, const Limits& limits);

/// The reply body of an embeddings request: `vectors` f32 [texts, dim] row-major.
std::string embeddings_reply(const std::string& model, const std::vector<float>& vectors,
                             int64_t dim, int64_t prompt_tokens);

/// {"error": {"code": ..., "message": ...}}
std::string error_body(const std::string& code, const std::string& message);

/// Whether `given` equals `key`, in time that depends on the lengths only (never on where the
/// first difference is).
bool same_key(const std::string& given, const std::string& key);

}  // namespace attend::serve
