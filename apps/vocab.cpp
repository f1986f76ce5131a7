// `attend vocab`: trains a joint SentencePiece model on text files.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "apps/cli.h"
#include "core/error.h"
#include "core/utf8.h"
#include "data/corpus.h"
#include "data/tokenizer.h"

namespace attend::apps {
namespace {

struct VocabArgs {
  std::vector<std::string> inputs;
  std::string output;
  data::TokenizerOptions tokenizer;
  int threads = 0;
};

int vocab(const VocabArgs& a) {
  apply_threads(a.threads);
  std::vector<std::string> all;
  for (const auto& f : a.inputs) {
    auto lines = data::read_lines(f);
    for (size_t k = 0; k < lines.size(); ++k)
      ATTEND_CHECK(valid_utf8(lines[k]), "{}:{}: invalid UTF-8", f, k + 1);
    all.insert(all.end(), lines.begin(), lines.end());
  }
  const data::Tokenizer tok = data::Tokenizer::train(all, a.tokenizer);
  tok.save(a.output);
  std::printf("vocab: %lld pieces from %zu lines -> %s\n", static_cast<long long>(tok.vocab_size()),
              all.size(), a.output.c_str());
  return 0;
}

}  // namespace

void add_vocab(CLI::App& root, int& exit_code) {
  auto a = std::make_shared<VocabArgs>();
  CLI::App* c = root.add_subcommand("vocab", "train a SentencePiece subword model");
  c->footer("Trains one joint model (pad 0, unk 1, bos 2, eos 3) on text files (.gz allowed).");
  c->add_option("-i,--input", a->inputs, "training text files")
      ->required()
      ->option_text("FILE ...");
  c->add_option("-o,--output", a->output, "the model file to write")
      ->required()
      ->option_text("MODEL");
  c->add_option("--size", a->tokenizer.vocab_size, "vocabulary size")->capture_default_str();
  c->add_option("--type", a->tokenizer.model_type, "subword algorithm")
      ->check(CLI::IsMember({"bpe", "unigram"}))
      ->capture_default_str();
  c->add_flag("--split-digits", a->tokenizer.split_digits, "one piece per digit");
  add_threads_flag(*c, a->threads);
  c->callback([a, &exit_code] { exit_code = vocab(*a); });
}

}  // namespace attend::apps
