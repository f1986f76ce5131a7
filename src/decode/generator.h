// Text generation with a decoder-only language model: each prompt is read in one causal pass
// (prefill) that fills its slot of the model's key/value cache, then continued one drawn token
// per step, all prompts side by side in one batch, each at its own position. Deterministic for
// a seed: the draws of prompt i come from the random stream (seed, i), whatever else is in the
// batch (up to the rounding of batched products).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/tokenizer.h"
#include "decode/session.h"
#include "nn/transformer.h"

namespace attend::decode {

struct GenerateOptions {
  int64_t max_new = 256;     // tokens generated per prompt at most
  double temperature = 1.0;  // 0: greedy (the most likely token)
  int64_t top_k = 0;         // 0: no cut
  double top_p = 1.0;        // 1: no cut
  uint64_t seed = 1;
  bool stop_at_eos = true;  // an end-of-text token ends a generation (it is not returned)
  /// Prompts longer than the context: false -> error, true -> keep their last tokens.
  bool truncate_left = false;
  /// > 1: beam search instead of drawing (deterministic; temperature, top_k, top_p and seed
  /// unused): `beam` hypotheses per prompt, the 2 * beam best extensions by total
  /// log-probability each step, finished ones ranked by log_prob / ((5 + L) / 6)^alpha
  /// (L: generated tokens, the end-of-text token included), as translation's beam search.
  int64_t beam = 1;
  double alpha = 0.6;

  /// Throws attend::Error naming the offending option.
  void validate() const;
};

struct Generation {
  std::vector<int32_t> tokens;  // generated ids (no prompt, no EOS)
  std::string text;             // their text
  int64_t prompt_tokens = 0;    // ids the prompt became (after any cut)
  int64_t cut = 0;              // prompt ids dropped from the left to fit the context
  bool ended = false;           // stopped by the end-of-text token
  double log_prob = 0;          // beam search: the hypothesis's log-probability (nats)
};

/// The summed next-token loss of a text under a language model.
struct LmScore {
  double nll = 0;      // sum of -log p(token | its window's earlier tokens), in nats
  int64_t tokens = 0;  // tokens predicted
  int64_t windows = 0;
  double loss() const { return tokens ? nll / static_cast<double>(tokens) : 0; }
};

/// Scores `text` read as training reads it (data::lm_stream), cut into windows of `block` ids
/// (each predicted from its own window only, as validation does), batched `max_tokens` at a
/// time. For a character model a token is a character, so loss() / ln 2 is bits per character.
LmScore score_text(const nn::DecoderOnly& model, const data::Tokenizer& tokenizer,
                   const std::string& text, int64_t block, int64_t max_tokens = 8192);

/// A masked-LM model's loss and accuracy on the masked tokens of a text (one sentence per
/// line), corrupted as training corrupts sentences (data::mask_batch) with a fixed seed.
struct MaskedScore {
  double nll = 0;
  int64_t masked = 0, correct = 0, sentences = 0;
  double loss() const { return masked ? nll / static_cast<double>(masked) : 0; }
  double accuracy() const {
    return masked ? static_cast<double>(correct) / static_cast<double>(masked) : 0;
  }
};
/// How many rows of `logits` [rows, V] have their most likely token equal to `targets[row]`,
/// over the rows whose target is not `ignore_id` (masked-LM accuracy).
int64_t count_correct(const Tensor& logits, const Tensor& targets, int32_t ignore_id);

MaskedScore score_masked(const nn::EncoderOnly& model, const data::Tokenizer& tokenizer,
                         const std::string& text, uint64_t seed, int64_t max_tokens = 8192);

struct Filler {
  int32_t id = 0;
  std::string piece;  // the token's text
  double probability = 0;
  std::string text;  // the input with the blank filled
};

/// The `top_k` most likely tokens for the one data::kMaskPiece in `text` (no special ids, not
/// the mask itself), most likely first. Text without exactly one mask, or invalid UTF-8, is an
/// error saying so.
std::vector<Filler> fill_mask(const nn::EncoderOnly& model, const data::Tokenizer& tokenizer,
                              const std::string& text, int64_t top_k);

/// One prompt to continue in an LmSession.
struct LmRequest {
  std::vector<int32_t> prompt;  // ids (Generator::prompt_ids): 1 to context ids
  GenerateOptions options;      // drawn or greedy (beam 1); truncate_left is not read
  uint64_t stream = 0;          // sampling stream: the prompt's index in its batch or request
  int64_t id = 0;               // the caller's handle, returned with the result
  bool pieces = false;          // hand its text out as it is drawn (take_text)
};

struct LmResult {
  int64_t id = 0;
  Generation generation;  // tokens, text (with a tokenizer), prompt_tokens, ended
};

/// Step-level generation over one key/value cache: prompts join between steps (admit: read in
/// one pass into free cache slots, their first token drawn), every step() draws one token for
/// each live prompt at its own position, and finished prompts leave (retire) and free their
/// slots. A prompt's tokens do not depend on what else is in the session (up to the rounding of
/// batched products): they are those of Generator::generate for the same options and stream,
/// which runs on this session. The model is only read.
class LmSession {
 public:
  /// `tokenizer` may be null (ids only: no text). Both must outlive the session.
  LmSession(const nn::DecoderOnly& model, const data::Tokenizer* tokenizer);
  LmSession(const LmSession&) = delete;
  LmSession& operator=(const LmSession&) = delete;

  /// Validates every request first (nothing is admitted then), then reads the prompts.
  void admit(const std::vector<LmRequest>& requests);
  /// One token for every live prompt.
  void step();
  /// The prompts finished since the last call, in the order they finished.
  std::vector<LmResult> retire();
  /// The text drawn since the last call by the requests that asked for pieces, as (id, piece)
  /// in order: whole UTF-8 characters as they complete; a prompt's last piece comes when it
  /// finishes. Empty without a tokenizer.
  std::vector<std::pair<int64_t, std::string>> take_text();
  /// Drops prompt `id` (no result). False when no live prompt has that id.
  bool cancel(int64_t id);
  int64_t live() const { return live_count_; }
  bool idle() const { return live_count_ == 0; }

 private:
  struct Entry {
    int64_t id = 0;
    GenerateOptions options;
    uint64_t stream = 0;
    std::vector<int32_t> seq;  // prompt, then the drawn tokens
    Generation out;
    bool pieces = false;  // text handed out as it is drawn
    size_t sent = 0;      // bytes of the decoded text already handed out
    int32_t slot = -1;
    bool live = false;  // drawing (false: finished, waiting to retire, or a free entry)
  };
  void take(size_t e, const Tensor& logits, int64_t row);
  void finish(size_t e);

  const nn::DecoderOnly& model_;
  const data::Tokenizer* tokenizer_;
  nn::KvCache cache_;
  Arena arena_;
  std::vector<Entry> entries_;       // live ones in admission order
  std::vector<int32_t> free_slots_;  // cache slots of finished prompts
  int32_t slots_used_ = 0;           // slots ever handed out
  int64_t live_count_ = 0;
  std::vector<LmResult> retired_;
  std::vector<std::pair<int64_t, std::string>> text_;
};

class Generator {
 public:
  /// The model (eval mode) and its tokenizer must outlive the generator.
  Generator(const nn::DecoderOnly& model, const data::Tokenizer& tokenizer);
  /// A generator of ids only (benchmarks, callers that tokenize themselves): Generation::text
  /// stays empty, and prompt_ids and on_token are errors.
  explicit Generator(const nn::DecoderOnly& model);

  /// The model's context: the most tokens it reads (a prompt plus what it generated, all but the
  /// newest token).
  int64_t context() const;
  /// The ids a prompt becomes: a character model reads the text as it is (an empty prompt
  /// starts from the beginning-of-text token); a subword model's documents start with it.
  /// Invalid UTF-8 is an error naming `where`.
  std::vector<int32_t> prompt_ids(const std::string& prompt, const std::string& where) const;

  /// Generates a continuation of every prompt (ids from prompt_ids), all in one batch; returns
  /// them in prompt order. on_token(i, text), when given, receives each new token's text of
  /// prompt i as it is drawn (text of a token that ends inside a UTF-8 character waits for the
  /// rest of it; with beam > 1 each prompt's text comes once, when its search ends).
  std::vector<Generation> generate(
      const std::vector<std::vector<int32_t>>& prompts, const GenerateOptions& o,
      const std::function<void(size_t, const std::string&)>& on_token = nullptr) const;

 private:
  std::vector<Generation> beam_search(std::vector<Generation> out,
                                      std::vector<std::vector<int32_t>> seq,
                                      const GenerateOptions& o) const;

  const nn::DecoderOnly& model_;
  const data::Tokenizer* tokenizer_;  // null: ids only
};

}  // namespace attend::decode
