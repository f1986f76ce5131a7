// What the training tests share: a small SentencePiece model trained on generated numbers and
// the keys of a tiny encoder-decoder (one encoder layer, two decoder layers, width 16).
#pragma once
#include <string>
#include <vector>

#include "data/batcher.h"
#include "data/numbers.h"
#include "data/tokenizer.h"
#include "io/config.h"
#include "models/config.h"
#include "train/options.h"

namespace attend::test {

inline data::Tokenizer tiny_tokenizer() {
  std::vector<std::string> s;
  for (const auto& p : data::generate_numbers(1, 300, 0, 9999, data::NumberLanguage::kEnglish)) {
    s.push_back(p.digits);
    s.push_back(p.words);
  }
  data::TokenizerOptions o;
  o.vocab_size = 60;
  return data::Tokenizer::train(s, o);
}

inline io::Config tiny_keys() {
  io::Config c = train::train_config();
  c.set("model.preset", "tiny", "test");
  c.set("model.d_model", "16", "test");
  c.set("model.ffn", "24", "test");
  c.set("model.encoder_layers", "1", "test");
  c.set("model.decoder_layers", "2", "test");
  return c;
}

/// The tokenizer, the model config of `keys` and 24 number pairs (digits -> English words) to
/// batch.
struct TinyData {
  data::Tokenizer tok = tiny_tokenizer();
  nn::TransformerConfig config;
  std::vector<data::Example> examples;
  explicit TinyData(const io::Config& keys)
      : config(models::model_config(keys, tok.vocab_size(), &tok)) {
    for (const auto& p : data::generate_numbers(5, 24, 0, 9999, data::NumberLanguage::kEnglish))
      examples.push_back({config.source(tok.encode(p.digits)), tok.encode(p.words)});
  }
  /// Examples first .. first + n - 1 as one batch.
  data::Batch batch(int64_t first, int64_t n) const {
    std::vector<int64_t> rows;
    for (int64_t i = first; i < first + n; ++i) rows.push_back(i);
    return data::make_batch(examples, rows);
  }
};

}  // namespace attend::test
