// What the training tests share: a small SentencePiece model trained on generated numbers and
// the keys of a tiny encoder-decoder (one encoder layer, two decoder layers, width 16).
#pragma once
#include <string>
#include <vector>

#include "data/numbers.h"
#include "data/tokenizer.h"
#include "io/config.h"
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

}  // namespace attend::test
