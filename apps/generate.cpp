// `attend generate`: continues prompts with a decoder-only language model (decode::Generator);
// `attend eval-lm`: its loss, perplexity and bits per character on a text (an encoder-only
// model's: masked-token loss and accuracy); `attend fill-mask`: an encoder-only model's fillers.
// Inference commands: models come through the model layer; nothing here includes train/.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "apps/cli.h"
#include "core/error.h"
#include "core/utf8.h"
#include "data/corpus.h"
#include "decode/generator.h"
#include "models/model_dir.h"
#include "nn/transformer.h"

namespace attend::apps {
namespace {

struct GenerateArgs {
  std::string model_dir, prompt, input, output, truncate = "error", bad_utf8 = "error";
  std::string precision, device;
  bool has_prompt = false;
  decode::GenerateOptions o;
  int threads = 0;
};

int generate(const GenerateArgs& a) {
  apply_threads(a.threads);
  ATTEND_CHECK(!(a.has_prompt && !a.input.empty()), "generate: give --prompt or -i, not both");
  decode::GenerateOptions o = a.o;
  o.truncate_left = a.truncate == "left";
  o.validate();
  const models::LoadedLanguageModel m = models::load_language_model_dir(a.model_dir);
  models::set_precision(*m.model, m.dir, a.precision);
  models::set_device(*m.model, a.device);
  const decode::Generator gen(*m.model, m.tokenizer);
  std::vector<std::string> prompts;
  if (!a.input.empty()) {
    prompts = read_input_lines(a.input);
  } else {
    prompts.push_back(a.prompt);  // no prompt: start from the beginning-of-text token
  }
  std::vector<std::vector<int32_t>> ids;
  for (size_t i = 0; i < prompts.size(); ++i) {
    const std::string where = a.input.empty() ? "--prompt" : a.input + ":" + std::to_string(i + 1);
    if (a.bad_utf8 == "replace" && !valid_utf8(prompts[i])) prompts[i] = repair_utf8(prompts[i]);
    ids.push_back(gen.prompt_ids(prompts[i], where));
    const int64_t n = static_cast<int64_t>(ids.back().size());
    if (n > gen.context() && o.truncate_left)
      std::fprintf(stderr,
                   "generate: warning: %s: kept the last %lld of %lld prompt tokens "
                   "(the model's context is %lld)\n",
                   where.c_str(), static_cast<long long>(gen.context()), static_cast<long long>(n),
                   static_cast<long long>(gen.context()));
    else
      ATTEND_CHECK(n <= gen.context(),
                   "generate: {}: the prompt has {} tokens but the model's "
                   "context is {} (keep its last tokens with --truncate left)",
                   where, n, gen.context());
    // Generation stops where the next token would not fit the context: say so when that cuts
    // --max-new short, rather than return fewer tokens without a word.
    const int64_t kept = std::min<int64_t>(n, gen.context()), room = gen.context() + 1 - kept;
    if (o.max_new > room)
      std::fprintf(stderr,
                   "generate: warning: %s: the prompt's %lld tokens leave room for %lld of the "
                   "%lld new tokens asked for (the model's context is %lld); generation stops "
                   "there\n",
                   where.c_str(), static_cast<long long>(kept), static_cast<long long>(room),
                   static_cast<long long>(o.max_new), static_cast<long long>(gen.context()));
  }
  if (a.input.empty()) {  // one prompt: its tokens stream to standard output as they come
    gen.generate(ids, o, [](size_t, const std::string& piece) {
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
    });
    std::fputc('\n', stdout);
    return 0;
  }
  // A file of prompts: one batch, one JSON object per prompt in input order.
  const std::vector<decode::Generation> outs = gen.generate(ids, o);
  std::string text;
  for (size_t i = 0; i < outs.size(); ++i) {
    nlohmann::ordered_json j = {{"line", i + 1},
                                {"prompt", prompts[i]},
                                {"text", outs[i].text},
                                {"prompt_tokens", outs[i].prompt_tokens},
                                {"tokens", outs[i].tokens.size()},
                                {"ended", outs[i].ended}};
    text += j.dump() + "\n";
  }
  write_output(a.output, text);
  return 0;
}

struct EvalArgs {
  std::string model_dir, input, bad_utf8 = "error";
  int64_t block = 0, max_tokens = 8192;
  uint64_t seed = 1;  // masked-LM models: which tokens are masked
  bool json = false;
  int threads = 0;
};

int eval_masked(const EvalArgs& a, const std::string& text) {
  const models::LoadedMaskedModel m = models::load_masked_model_dir(a.model_dir);
  models::require_token_head(m, "eval-lm");
  const decode::MaskedScore s =
      decode::score_masked(*m.model, m.tokenizer, text, a.seed, a.max_tokens);
  ATTEND_CHECK(s.masked > 0, "{}: too little text to mask a token", a.input);
  if (a.json) {
    nlohmann::ordered_json j = {{"sentences", s.sentences},
                                {"masked", s.masked},
                                {"loss", s.loss()},
                                {"ppl", std::exp(s.loss())},
                                {"masked_accuracy", s.accuracy()}};
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  std::printf(
      "%s: %lld sentences, %lld masked tokens (seed %llu): loss %.4f  ppl %.3f  "
      "masked accuracy %.2f%%\n",
      a.input.c_str(), static_cast<long long>(s.sentences), static_cast<long long>(s.masked),
      static_cast<unsigned long long>(a.seed), s.loss(), std::exp(s.loss()), 100.0 * s.accuracy());
  return 0;
}

int eval_lm(const EvalArgs& a) {
  apply_threads(a.threads);
  const data::Text t =
      data::read_text(a.input, a.bad_utf8 == "skip" ? data::BadUtf8::kSkip : data::BadUtf8::kError);
  ATTEND_CHECK(!t.text.empty(), "{}: no text to evaluate", a.input);
  // an encoder-only model is scored on masked tokens
  if (models::model_arch(a.model_dir) == nn::Arch::kEncoderOnly) return eval_masked(a, t.text);
  const models::LoadedLanguageModel m = models::load_language_model_dir(a.model_dir);
  const int64_t block = a.block > 0 ? a.block : m.model->config().max_positions;
  const decode::LmScore s = decode::score_text(*m.model, m.tokenizer, t.text, block, a.max_tokens);
  ATTEND_CHECK(s.tokens > 0, "{}: too little text to predict a token", a.input);
  const bool chars = m.tokenizer.is_char();
  if (a.json) {
    nlohmann::ordered_json j = {{"tokens", s.tokens},
                                {"windows", s.windows},
                                {"block", block},
                                {"loss", s.loss()},
                                {"ppl", std::exp(s.loss())}};
    if (chars) j["bpc"] = s.loss() / std::log(2.0);
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  std::printf("%s: %lld tokens in %lld windows of %lld: loss %.4f  ppl %.3f", a.input.c_str(),
              static_cast<long long>(s.tokens), static_cast<long long>(s.windows),
              static_cast<long long>(block), s.loss(), std::exp(s.loss()));
  if (chars) std::printf("  bpc %.4f", s.loss() / std::log(2.0));
  std::printf("\n");
  return 0;
}

struct FillArgs {
  std::string model_dir, text;
  int64_t top_k = 5;
  int threads = 0;
};

int fill_mask_command(const FillArgs& a) {
  apply_threads(a.threads);
  const models::LoadedMaskedModel m = models::load_masked_model_dir(a.model_dir);
  models::require_token_head(m, "fill-mask");
  for (const auto& f : decode::fill_mask(*m.model, m.tokenizer, a.text, a.top_k))
    std::printf("%.4f\t%s\t%s\n", f.probability, f.piece.c_str(), f.text.c_str());
  return 0;
}

}  // namespace

void add_fill_mask(CLI::App& root, int& exit_code) {
  auto a = std::make_shared<FillArgs>();
  CLI::App* c = root.add_subcommand(
      "fill-mask", "the most likely tokens for the [MASK] in a text (encoder-only models)");
  c->footer("Prints 'PROBABILITY<TAB>TOKEN<TAB>FILLED TEXT' per line, most likely first.");
  add_model_flag(*c, a->model_dir);
  c->add_option("text", a->text, "the text, with exactly one [MASK]")->required();
  c->add_option("--top-k", a->top_k, "how many fillers")
      ->check(integer_in(1, INT64_MAX))
      ->capture_default_str();
  add_threads_flag(*c, a->threads);
  c->callback([a, &exit_code] { exit_code = fill_mask_command(*a); });
}

void add_generate(CLI::App& root, int& exit_code) {
  auto a = std::make_shared<GenerateArgs>();
  CLI::App* c = root.add_subcommand("generate",
                                    "continue prompts with a trained decoder-only language model");
  c->footer(
      "With --prompt (or no prompt: generation starts from the beginning-of-text token) the\n"
      "new text streams to standard output as it is generated. With -i, every line of the file\n"
      "is a prompt; they are generated as one batch and written as JSON lines in input order\n"
      "({\"line\", \"prompt\", \"text\", \"prompt_tokens\", \"tokens\", \"ended\"}). A seed\n"
      "gives the same text whatever the batching.");
  add_model_flag(*c, a->model_dir);
  c->add_option("--prompt", a->prompt, "the text to continue")->option_text("TEXT");
  c->add_option("-i,--input", a->input, "a file of prompts, one per line")->option_text("FILE");
  c->add_option("-o,--output", a->output, "with -i: output file, written atomically")
      ->option_text("FILE");
  decode::GenerateOptions& o = a->o;
  c->add_option("--max-new", o.max_new, "tokens to generate at most per prompt")
      ->check(integer_in(0, INT64_MAX))
      ->capture_default_str();
  c->add_option("--temperature", o.temperature, "softmax temperature (0: greedy)")
      ->capture_default_str();
  c->add_option("--top-k", o.top_k, "keep the K most likely tokens (0: all)")
      ->check(integer_in(0, INT64_MAX))
      ->capture_default_str();
  c->add_option("--top-p", o.top_p, "nucleus: the most likely tokens of this much probability")
      ->capture_default_str();
  c->add_option("--seed", o.seed, "random seed")->capture_default_str();
  c->add_option("--beam", o.beam,
                "> 1: beam search with this many hypotheses (deterministic: --temperature, "
                "--top-k, --top-p and --seed unused; the text is printed when the search ends)")
      ->check(integer_in(1, 4096))
      ->capture_default_str();
  c->add_option("--alpha", o.alpha, "beam search: length penalty exponent (0: none)")
      ->capture_default_str();
  c->add_option(
       "--precision", a->precision,
       "fp32; bf16 (weights stored in bf16: half the bytes per step, f32 arithmetic); int8 "
       "(linear layers quantized per row, int8 products). Default: as the model is stored")
      ->check(CLI::IsMember({"fp32", "bf16", "int8"}));
  c->add_option("--truncate", a->truncate,
                "a prompt longer than the model's context: error, or keep its last tokens (left)")
      ->check(CLI::IsMember({"error", "left"}))
      ->capture_default_str();
  c->add_option("--bad-utf8", a->bad_utf8,
                "invalid UTF-8 in a prompt: stop naming it (error), or substitute U+FFFD (replace)")
      ->check(CLI::IsMember({"error", "replace"}))
      ->capture_default_str();
  add_device_flag(*c, a->device);
  add_threads_flag(*c, a->threads);
  c->callback([a, c, &exit_code] {
    a->has_prompt = c->count("--prompt") > 0;
    exit_code = generate(*a);
  });
}

void add_eval_lm(CLI::App& root, int& exit_code) {
  auto a = std::make_shared<EvalArgs>();
  CLI::App* c = root.add_subcommand(
      "eval-lm", "a language model's loss, perplexity and bits per character on a text");
  c->footer(
      "Reads the text as training reads it (a character model: one stream; a subword model: one\n"
      "document per line) in windows of --block tokens, each predicted from its own window, as\n"
      "validation during training does. An encoder-only model is scored on its masked tokens\n"
      "(one sentence per line, masked as in training with --seed): loss, perplexity and the\n"
      "share of masked tokens predicted exactly.");
  add_model_flag(*c, a->model_dir);
  c->add_option("-i,--input", a->input, "the text (UTF-8, .gz allowed)")
      ->required()
      ->option_text("FILE");
  c->add_option("--block", a->block, "tokens per window (default: the model's context)")
      ->check(integer_in(1, INT64_MAX));
  c->add_option("--max-tokens", a->max_tokens, "tokens per batch")
      ->check(integer_in(1, INT64_MAX))
      ->capture_default_str();
  c->add_option("--bad-utf8", a->bad_utf8,
                "invalid UTF-8: stop naming the line (error), or leave such lines out (skip)")
      ->check(CLI::IsMember({"error", "skip"}))
      ->capture_default_str();
  c->add_option("--seed", a->seed, "encoder-only models: the seed choosing the masked tokens")
      ->capture_default_str();
  c->add_flag("--json", a->json, "one JSON object instead of the line");
  add_threads_flag(*c, a->threads);
  c->callback([a, &exit_code] { exit_code = eval_lm(*a); });
}

}  // namespace attend::apps
