// Sentence embeddings and hidden states from an encoder-only model: what BERT's descendants are
// used for. A text is read as masked-LM training reads a sentence (data::mlm_sentence: BOS, its
// ids, EOS, cut to the model's positions), texts are encoded in length-sorted batches, and each
// text's last hidden states are pooled: the mean over all its positions (BOS and EOS included,
// as sentence-transformers averages), or the BOS position's ("cls"). A text's result does not
// depend on the others in its batch (up to the rounding of batched products).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "data/tokenizer.h"
#include "decode/session.h"
#include "nn/transformer.h"

namespace attend::decode {

enum class Pooling { kMean, kCls };
/// "mean" or "cls"; anything else is an error naming `flag`.
Pooling parse_pooling(const std::string& name, const std::string& flag);

struct EmbedOptions {
  Pooling pooling = Pooling::kMean;
  bool normalize = true;        // divide each embedding by its L2 norm
  int64_t batch_tokens = 8192;  // padded positions per encoder batch
  StepCheck check;              // called before every batch
};

/// The ids an encoder-only model reads for `text` (BOS, ids, EOS; cut to max_positions).
/// Invalid UTF-8 is an error naming `where`.
std::vector<int32_t> encoder_ids(const nn::EncoderOnly& model, const data::Tokenizer& tokenizer,
                                 const std::string& text, const std::string& where);

/// One embedding per text: f32 [texts.size(), d_model]. where(i) names text i in errors.
Tensor embed(const nn::EncoderOnly& model, const data::Tokenizer& tokenizer,
             const std::vector<std::string>& texts, const EmbedOptions& options,
             const std::string& input_name = "text");

/// What an encoder-only model made of one text: the ids it read (encoder_ids) and its last
/// hidden states, f32 [ids, d_model].
struct Hidden {
  std::vector<int32_t> ids;
  Tensor states;
};
/// The ids and last hidden states of each text.
std::vector<Hidden> hidden_states(const nn::EncoderOnly& model, const data::Tokenizer& tokenizer,
                                  const std::vector<std::string>& texts,
                                  const EmbedOptions& options,
                                  const std::string& input_name = "text");

}  // namespace attend::decode
