// `attend score`: corpus BLEU and chrF as sacreBLEU computes them by default.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "apps/cli.h"
#include "core/error.h"
#include "core/utf8.h"
#include "data/corpus.h"
#include "eval/bleu.h"
#include "eval/chrf.h"

namespace attend::apps {
namespace {

struct ScoreArgs {
  std::vector<std::string> refs, metrics{"bleu"};
  std::string input;
  eval::BleuOptions bleu;
  bool json = false;
  int threads = 0;
};

int score(const ScoreArgs& a) {
  apply_threads(a.threads);
  const std::string hyp_name = a.input.empty() ? "<stdin>" : a.input;
  const std::vector<std::string> hyps = read_input_lines(a.input);
  auto check_utf8 = [](const std::vector<std::string>& lines, const std::string& name) {
    for (size_t k = 0; k < lines.size(); ++k)
      ATTEND_CHECK(valid_utf8(lines[k]), "score: {}:{}: invalid UTF-8", name, k + 1);
  };
  check_utf8(hyps, hyp_name);
  std::vector<std::vector<std::string>> ref_sets;
  for (const auto& r : a.refs) {
    ref_sets.push_back(data::read_lines(r));
    check_utf8(ref_sets.back(), r);
    ATTEND_CHECK(ref_sets.back().size() == hyps.size(),
                 "score: {} has {} lines but the hypotheses ({}) have {} lines", r,
                 ref_sets.back().size(), hyp_name, hyps.size());
  }
  const eval::BleuOptions& o = a.bleu;
  std::string out;
  char buf[512];
  for (const auto& metric : a.metrics) {
    if (metric == "bleu") {
      const eval::BleuScore b = eval::corpus_bleu(hyps, ref_sets, o);
      if (a.json) {
        std::snprintf(buf, sizeof buf,
                      "\"bleu\": %.2f, \"precisions\": [%.2f, %.2f, %.2f, %.2f], "
                      "\"bp\": %.4f, \"hyp_len\": %lld, \"ref_len\": %lld, \"tokenize\": \"%s\", ",
                      b.score, b.precisions[0], b.precisions[1], b.precisions[2], b.precisions[3],
                      b.brevity_penalty, static_cast<long long>(b.sys_len),
                      static_cast<long long>(b.ref_len), o.tokenize.c_str());
        out += buf;
      } else {
        out += b.str() + "\n";
      }
    } else {
      eval::ChrfOptions co;
      co.lowercase = o.lowercase;
      const eval::ChrfScore c = eval::corpus_chrf(hyps, ref_sets, co);
      if (a.json) {
        std::snprintf(buf, sizeof buf, "\"chrf\": %.2f, ", c.score);
        out += buf;
      } else {
        out += c.str() + "\n";
      }
    }
  }
  if (a.json) out = "{" + out + "\"lowercase\": " + (o.lowercase ? "true" : "false") + "}\n";
  std::fputs(out.c_str(), stdout);
  return 0;
}

}  // namespace

void add_score(CLI::App& root, int& exit_code) {
  auto a = std::make_shared<ScoreArgs>();
  CLI::App* c =
      root.add_subcommand("score", "corpus BLEU / chrF of a translation against references");
  c->footer(
      "Scores as sacreBLEU does (BLEU: 13a tokenization by default, or intl, char, none as\n"
      "sacreBLEU's tokenizers of those names, exponential smoothing; chrF:\n"
      "character 6-grams, beta 2, whitespace ignored). --json prints one object, e.g.\n"
      "{\"bleu\": 35.12, ..., \"chrf\": 61.30, \"lowercase\": false}.");
  c->add_option("-r,--refs", a->refs, "reference files (one or more)")
      ->required()
      ->option_text("REF ...");
  c->add_option("-i,--input", a->input, "hypotheses (default: standard input)")->option_text("HYP");
  c->add_option("-m,--metrics", a->metrics, "metrics to compute: bleu and/or chrf")
      ->check(CLI::IsMember({"bleu", "chrf"}))
      ->capture_default_str();
  c->add_option("--tokenize", a->bleu.tokenize, "BLEU tokenization")
      ->check(CLI::IsMember({"13a", "intl", "char", "none"}))
      ->capture_default_str();
  c->add_flag("--lowercase", a->bleu.lowercase, "compare lowercased text");
  c->add_flag("--json", a->json, "print one JSON object");
  add_threads_flag(*c, a->threads);
  c->callback([a, &exit_code] { exit_code = score(*a); });
}

}  // namespace attend::apps
