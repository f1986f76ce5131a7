// `attend translate`: text in, text out through decode::Translator. This path loads models
// through the model layer only; nothing here includes train/.
#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "apps/cli.h"
#include "core/error.h"
#include "data/corpus.h"
#include "decode/translator.h"
#include "models/model_dir.h"

namespace attend::apps {
namespace {

struct TranslateArgs {
  std::string model_dir, input, output, bad_utf8 = "error", precision, prefix, device;
  int64_t batch_tokens = 2000, max_input_tokens = 0;
  decode::SearchOptions search;
  int threads = 0;
};

int translate(TranslateArgs a) {
  apply_threads(a.threads);
  decode::SearchOptions& so = a.search;
  const bool n_best_out = so.n_best > 1;
  if (so.sample) so.beam = 1;
  try {
    so.validate();
  } catch (const Error& e) {  // name the flags, not the library's fields
    std::string m = e.what();
    for (const auto& [field, flag] :
         std::vector<std::pair<std::string, std::string>>{{"n_best", "--n-best"},
                                                          {"max_extra", "--max-extra"},
                                                          {"max_length", "--max-length"},
                                                          {"min_length", "--min-length"},
                                                          {"top_k", "--top-k"},
                                                          {"top_p", "--top-p"},
                                                          {"beam", "--beam"},
                                                          {"alpha", "--alpha"},
                                                          {"temperature", "--temperature"}})
      if (const auto at = m.find("search: " + field); at != std::string::npos)
        m.replace(at, 8 + field.size(), "translate: " + flag);
    throw Error(m);
  }
  const models::LoadedModel m = models::load_model_dir(a.model_dir);
  models::set_precision(*m.model, m.dir, a.precision);
  models::set_device(*m.model, a.device);
  const std::vector<std::string> lines = read_input_lines(a.input);
  std::vector<std::string> prefixes;
  if (!a.prefix.empty()) {
    prefixes = data::read_lines(a.prefix);
    ATTEND_CHECK(prefixes.size() == lines.size(),
                 "translate: --prefix {} has {} lines but the input ({}) has {}", a.prefix,
                 prefixes.size(), a.input.empty() ? "<stdin>" : a.input, lines.size());
  }
  decode::TranslateOptions to;
  to.search = so;
  to.batch_tokens = a.batch_tokens;
  to.max_input_tokens = a.max_input_tokens;
  to.replace_bad_utf8 = a.bad_utf8 == "replace";
  const auto outs = decode::Translator(m).translate(
      lines, to, a.input.empty() ? "<stdin>" : a.input,
      [](const std::string& w) { std::fprintf(stderr, "translate: warning: %s\n", w.c_str()); },
      prefixes);
  std::string text;
  for (size_t i = 0; i < outs.size(); ++i) {
    if (!n_best_out) {
      text += outs[i][0].text + "\n";
      continue;
    }
    for (const auto& h : outs[i]) {
      char score[32];
      std::snprintf(score, sizeof score, "%.4f", h.score);
      text += std::to_string(i) + " ||| " + h.text + " ||| " + score + "\n";
    }
  }
  write_output(a.output, text);
  return 0;
}

}  // namespace

void add_translate(CLI::App& root, int& exit_code) {
  auto a = std::make_shared<TranslateArgs>();
  CLI::App* c = root.add_subcommand(
      "translate", "translate text with a trained model (beam, greedy or sampling)");
  c->footer(
      "Translates one sentence per line (standard input when -i is absent), one output line per\n"
      "input line in input order.");
  add_model_flag(*c, a->model_dir);
  c->add_option("-i,--input", a->input, "input text (default: standard input)")
      ->option_text("FILE");
  c->add_option("-o,--output", a->output,
                "output file, written atomically (default: standard output)")
      ->option_text("FILE");
  decode::SearchOptions& s = a->search;
  c->add_option("--prefix", a->prefix,
                "target prefixes, one per input line: each translation starts with its line's "
                "text (an empty line: none)")
      ->option_text("FILE");
  c->add_option("--beam", s.beam, "beam size (1 = greedy)")->capture_default_str();
  c->add_option("--alpha", s.alpha, "length penalty ((5 + length) / 6)^A")->capture_default_str();
  c->add_option("--n-best", s.n_best,
                "write the N best hypotheses per line as 'LINE ||| TEXT ||| SCORE' (LINE counts\n"
                "from 0; SCORE = log-probability / length penalty)")
      ->capture_default_str();
  c->add_option("--max-extra", s.max_extra, "outputs have at most source length + N subwords")
      ->capture_default_str();
  c->add_option("--max-length", s.max_length,
                "and at most N subwords whatever the source's length (0: no such limit)")
      ->capture_default_str();
  c->add_option("--min-length", s.min_length, "no end of sentence before N subwords")
      ->capture_default_str();
  c->add_flag("--sample", s.sample, "draw tokens instead of searching (beam 1)");
  c->add_option("--temperature", s.temperature, "sampling: softmax temperature")
      ->capture_default_str();
  c->add_option("--top-k", s.top_k, "sampling: keep the K most likely tokens (0: all)")
      ->capture_default_str();
  c->add_option("--top-p", s.top_p, "sampling: nucleus mass")->capture_default_str();
  c->add_option("--seed", s.seed, "sampling: random seed")->capture_default_str();
  c->add_option("--precision", a->precision,
                "fp32; bf16 (weights stored in bf16, f32 arithmetic; needs AVX-512); int8 (linear "
                "layers quantized per row at load, int8 products). Default: as the model is "
                "stored (an attend quantize model: int8)")
      ->check(CLI::IsMember({"fp32", "bf16", "int8"}));
  c->add_option("--batch-tokens,--max-tokens", a->batch_tokens, "source subwords per batch")
      ->check(integer_in(1, INT64_MAX))
      ->capture_default_str();
  c->add_option("--max-input-tokens", a->max_input_tokens,
                "longer inputs are cut to N subwords with a warning naming the line (default:\n"
                "the model's max_positions)")
      ->check(integer_in(1, INT64_MAX));
  c->add_option("--bad-utf8", a->bad_utf8,
                "invalid UTF-8 input: stop naming the line (error), or substitute U+FFFD (replace)")
      ->check(CLI::IsMember({"error", "replace"}))
      ->capture_default_str();
  add_device_flag(*c, a->device);
  add_threads_flag(*c, a->threads);
  c->callback([a, &exit_code] { exit_code = translate(*a); });
}

}  // namespace attend::apps
