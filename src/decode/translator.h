// The inference API for translation: text in, text out. A Translator pairs a model with its
// tokenizer (both only read, so threads may share one); `attend translate`, validation during
// training and a server all translate through it. Lines are checked (UTF-8), tokenized, built
// into encoder input (TransformerConfig::source), decoded in length-sorted batches (beam search,
// n-best or sampling; see session.h) and detokenized, in input order.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "decode/session.h"
#include "models/model_dir.h"

namespace attend::decode {

struct TranslateOptions {
  SearchOptions search;
  int64_t batch_tokens = 2000;    // source subwords per decoding batch
  int64_t max_input_tokens = 0;   // longer inputs are cut, with a warning (0: model max_positions)
  bool replace_bad_utf8 = false;  // invalid UTF-8: substitute U+FFFD instead of an error
  StepCheck check;                // called before every decoding step (session.h)
  /// Throws attend::Error naming the offending option.
  void validate() const;
};

struct Translation {
  std::string text;
  std::vector<int32_t> tokens;  // target subword ids, without BOS/EOS
  double score = 0;             // log_prob / length penalty (what ranks the n-best list)
  double log_prob = 0;
};

/// The encoder-attention weights behind one translation: one teacher-forced pass of the decoder
/// over BOS + `target` (its tokens, without BOS/EOS) reading `source` (encoder ids), with the
/// reference attention's probabilities recorded (nn::CrossAttentionProbe). One f32 tensor
/// [H, T + 1, S] per decoder layer, T = target.size(), S = source.size(): row t is the position
/// that predicts target token t (row T predicts the end token; an output that filled a learned
/// position table has no row T); each row sums to 1. Exact:
/// the same weights the search's cached steps used, up to the rounding of the fused kernel.
std::vector<Tensor> cross_attention(const nn::EncoderDecoder& model,
                                    const std::vector<int32_t>& source,
                                    const std::vector<int32_t>& target);

class Translator {
 public:
  Translator(const nn::EncoderDecoder& model, const data::Tokenizer& tokenizer);
  explicit Translator(const models::LoadedModel& loaded);

  /// The n-best translations of every line, in input order (an empty line gives one empty
  /// translation). `input_name` names the input in errors and warnings ("name:line"); a line
  /// cut to max_input_tokens is reported to `warn` (when given) as soon as it is read, before
  /// any translation runs. prefixes (empty, or one per line; an empty one forces nothing): the
  /// target text each translation of that line starts with (its subwords forced, then searched
  /// on), as CTranslate2's target_prefix.
  std::vector<std::vector<Translation>> translate(
      const std::vector<std::string>& lines, const TranslateOptions& options,
      const std::string& input_name = "<input>",
      const std::function<void(const std::string&)>& warn = {},
      const std::vector<std::string>& prefixes = {}) const;

  /// Teacher-forced scores (CTranslate2's score_batch): for each (source, target) pair, the
  /// log-probability (nats) of each target subword given the source and the subwords before it,
  /// then of the end token: target subwords + 1 values. Pairs run in length-sorted batches of
  /// about options.batch_tokens positions; sources are read as translate() reads them. An
  /// empty source, invalid UTF-8 or a target past the model's positions is an error naming
  /// "input_name:number".
  std::vector<std::vector<double>> score(const std::vector<std::string>& sources,
                                         const std::vector<std::string>& targets,
                                         const TranslateOptions& options,
                                         const std::string& input_name = "<input>") const;

  /// The encoder input translate() makes of `line` (line `number` of `input_name`, for errors
  /// and the warning about a cut): checked or repaired UTF-8, subwords, TransformerConfig::source,
  /// cut to max_input_tokens (reported to `warn` when given).
  std::vector<int32_t> source_ids(const std::string& line, const TranslateOptions& options,
                                  const std::string& input_name = "<input>", size_t number = 1,
                                  const std::function<void(const std::string&)>& warn = {}) const;

  const nn::EncoderDecoder& model() const { return model_; }
  const data::Tokenizer& tokenizer() const { return tokenizer_; }

 private:
  const nn::EncoderDecoder& model_;
  const data::Tokenizer& tokenizer_;
};

}  // namespace attend::decode
