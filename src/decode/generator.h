// Text generation with a decoder-only language model, on the decoding session (session.h): each
// prompt is read in one causal pass (prefill) that fills its slot of the model's key/value
// cache, then continued one token per step (drawn, greedy or by beam search), all prompts side
// by side in one batch, each at its own position. Deterministic for a seed: the draws of prompt
// i come from the random stream (seed, i), whatever else is in the batch (up to the rounding of
// batched products). Also: scoring a text, masked-LM scores and fill-mask.
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
  /// Generations per prompt: with beam > 1 the n best hypotheses (n <= beam), best first; when
  /// drawing, n independent draws (draw j of prompt i from stream i * n + j); greedy: 1.
  int64_t n = 1;
  StepCheck check;  // called before every decoding step (session.h)

  /// Throws attend::Error naming the offending option.
  void validate() const;
  /// The same as search options of a decoding session (decoder-only requests): temperature 0
  /// is a beam-1 search (the most likely token, lowest id on ties), a temperature > 0 draws.
  SearchOptions search() const;
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

/// Hypothesis `rank` of a decoding session's result for one prompt of `prompt_tokens` ids as a
/// Generation (text when a tokenizer is given; an empty one past the hypotheses found).
Generation to_generation(const Result& r, int64_t prompt_tokens, const data::Tokenizer* tokenizer,
                         size_t rank = 0);

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

  /// Generates a continuation of every prompt (ids from prompt_ids), all in one batch of a
  /// decoding session; returns them in prompt order. on_token(i, text), when given, receives
  /// each new token's text of prompt i as it is drawn (text of a token that ends inside a UTF-8
  /// character waits for the rest of it; with beam > 1 each prompt's text comes once, when its
  /// search ends).
  std::vector<Generation> generate(
      const std::vector<std::vector<int32_t>>& prompts, const GenerateOptions& o,
      const std::function<void(size_t, const std::string&)>& on_token = nullptr) const;

  const nn::DecoderOnly& model() const { return model_; }
  const data::Tokenizer* tokenizer() const { return tokenizer_; }

 private:
  const nn::DecoderOnly& model_;
  const data::Tokenizer* tokenizer_;  // null: ids only
};

/// One generate() call stepped by its caller: generate() runs one to its end; the Python API's
/// generate_tokens steps one as its iterator is read, on the reader's thread. Constructing it
/// checks the prompts and options (generate()'s errors) and reads the prompts.
class GenerationRun {
 public:
  /// `pieces`: hand out each prompt's text as it is drawn (take_text; needs a tokenizer).
  GenerationRun(const Generator& generator, const std::vector<std::vector<int32_t>>& prompts,
                const GenerateOptions& o, bool pieces);
  GenerationRun(const GenerationRun&) = delete;
  GenerationRun& operator=(const GenerationRun&) = delete;

  bool done() const { return session_.idle(); }
  /// One decoding step for every prompt still going (GenerateOptions::check first).
  void step();
  /// The text drawn since the last call, as (prompt index, piece) (Session::take_text).
  std::vector<std::pair<int64_t, std::string>> take_text() { return session_.take_text(); }
  /// The generations in prompt order, once done().
  std::vector<Generation> finish();

 private:
  const Generator& generator_;
  GenerateOptions o_;
  std::vector<Generation> out_;
  Session session_;
};

}  // namespace attend::decode
