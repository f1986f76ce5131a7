// vocab, train, translate and average (see commands.h).
#include "apps/commands.h"

#include <cstdio>
#include <filesystem>
#include <iostream>

#include "core/error.h"
#include "core/thread_pool.h"
#include "core/utf8.h"
#include "data/corpus.h"
#include "data/tokenizer.h"
#include "decode/translator.h"
#include "eval/bleu.h"
#include "eval/chrf.h"
#include "io/file.h"
#include "io/safetensors.h"
#include "models/model_dir.h"
#include "train/checkpoint.h"
#include "train/options.h"
#include "train/trainer.h"

namespace attend::apps {
namespace fs = std::filesystem;
namespace {

int64_t to_int(const std::string& flag, const std::string& v) {
  try {
    size_t used = 0;
    const long long x = std::stoll(v, &used);
    if (used == v.size()) return x;
  } catch (const std::exception&) {
  }
  ATTEND_FAIL("option {}: expected an integer, got '{}'", flag, v);
}

const std::string& value(const std::vector<std::string>& args, size_t& i) {
  ATTEND_CHECK(i + 1 < args.size(), "option {} needs a value", args[i]);
  return args[++i];
}

const char* kVocabHelp =
    "usage: attend vocab -i FILE [FILE ...] -o MODEL [--size N] [--type bpe|unigram] [--split-digits]\n"
    "Trains a joint SentencePiece model (pad 0, unk 1, bos 2, eos 3) on text files (.gz allowed).\n";

const char* kTrainHelp =
    "usage: attend train [CONFIG.yaml] [--section.key VALUE ...] [--resume]\n"
    "Trains an encoder-decoder Transformer. Keys come from the defaults below, then CONFIG.yaml,\n"
    "then the command line. --resume continues train.out's last checkpoint exactly (its\n"
    "config.json is the base; keys given here override it, e.g. a larger train.max_steps).\n"
    "Ctrl-C (SIGINT) or SIGTERM saves a checkpoint before exiting.\n";

const char* kTranslateHelp =
    "usage: attend translate -m MODEL_DIR [-i INPUT] [-o OUTPUT] [options]\n"
    "Translates one sentence per line (standard input when -i is absent), one output line per\n"
    "input line in input order. MODEL_DIR is a checkpoint or a run directory (its best/ model,\n"
    "else its last checkpoint).\n"
    "  --beam K             beam size (default 4; 1 = greedy)\n"
    "  --alpha A            length penalty ((5 + length) / 6)^A (default 0.6)\n"
    "  --n-best N           write the N best hypotheses per line as 'LINE ||| TEXT ||| SCORE'\n"
    "                       (LINE counts from 0; SCORE = log-probability / length penalty)\n"
    "  --max-extra N        outputs have at most source length + N subwords (default 50)\n"
    "  --min-length N       no end of sentence before N subwords (default 0)\n"
    "  --sample             draw tokens instead of searching (beam 1), with\n"
    "  --temperature T      softmax temperature (default 1), --top-k K (0: all),\n"
    "  --top-p P            nucleus mass (default 1), --seed S (default 0)\n"
    "  --batch-tokens N     source subwords per batch (default 2000; alias --max-tokens)\n"
    "  --max-input-tokens N longer inputs are cut to N subwords with a warning naming the line\n"
    "                       (default: the model's max_positions)\n"
    "  --threads N          CPU threads\n"
    "  --bad-utf8 error|replace  invalid UTF-8 input: stop naming the line, or substitute U+FFFD\n";

const char* kScoreHelp =
    "usage: attend score -r REF [REF ...] [-i HYP] [--metrics bleu chrf] [--tokenize 13a|none]\n"
    "                    [--lowercase] [--json]\n"
    "Corpus BLEU and chrF as sacreBLEU computes them by default (BLEU: 13a tokenization,\n"
    "exponential smoothing; chrF: character 6-grams, beta 2, whitespace ignored). Hypotheses\n"
    "come from standard input when -i is absent; several reference files are allowed.\n"
    "--metrics picks the metrics (default: bleu); --json prints one object, e.g.\n"
    "{\"bleu\": 35.12, ..., \"chrf\": 61.30, \"lowercase\": false}.\n";

const char* kAverageHelp =
    "usage: attend average -o OUT_DIR (--last N RUN_DIR | CHECKPOINT_DIR ...)\n"
    "Averages the weights of several checkpoints into a new model directory.\n";

}  // namespace

int cmd_vocab(const std::vector<std::string>& args) {
  std::vector<std::string> inputs;
  std::string output;
  data::TokenizerOptions o;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") {
      std::fputs(kVocabHelp, stdout);
      return 0;
    } else if (a == "-i" || a == "--input") {
      while (i + 1 < args.size() && args[i + 1].rfind("-", 0) != 0) inputs.push_back(args[++i]);
    } else if (a == "-o" || a == "--output") {
      output = value(args, i);
    } else if (a == "--size") {
      o.vocab_size = to_int(a, value(args, i));
    } else if (a == "--type") {
      o.model_type = value(args, i);
    } else if (a == "--split-digits") {
      o.split_digits = true;
    } else {
      ATTEND_FAIL("vocab: unknown option '{}' (see attend vocab --help)", a);
    }
  }
  ATTEND_CHECK(!inputs.empty() && !output.empty(), "vocab: -i FILE... and -o MODEL are required");
  std::vector<std::string> all;
  for (const auto& f : inputs) {
    auto lines = data::read_lines(f);
    for (size_t k = 0; k < lines.size(); ++k)
      ATTEND_CHECK(valid_utf8(lines[k]), "{}:{}: invalid UTF-8", f, k + 1);
    all.insert(all.end(), lines.begin(), lines.end());
  }
  const data::Tokenizer tok = data::Tokenizer::train(all, o);
  tok.save(output);
  std::printf("vocab: %lld pieces from %zu lines -> %s\n", static_cast<long long>(tok.vocab_size()),
              all.size(), output.c_str());
  return 0;
}

int cmd_train(const std::vector<std::string>& args) {
  io::Config c = train::train_config();
  bool resume = false;
  std::vector<std::string> keys;
  for (const auto& a : args) {
    if (a == "--help" || a == "-h") {
      std::fputs(kTrainHelp, stdout);
      std::fputs(c.help().c_str(), stdout);
      return 0;
    }
    if (a == "--resume") resume = true;
    else keys.push_back(a);
  }
  // The positional CONFIG.yaml is what remains after the --key value pairs.
  std::string yaml;
  {
    io::Config probe = train::train_config();
    for (const auto& r : probe.apply_args(keys)) {
      ATTEND_CHECK(r.rfind("--", 0) != 0, "train: unknown option or key '{}' (attend train --help "
                   "lists every key)", r);
      ATTEND_CHECK(yaml.empty(), "train: unexpected argument '{}' (one config file at most)", r);
      yaml = r;
    }
  }
  auto build = [&](io::Config& cfg) {  // defaults/checkpoint < YAML < command line
    if (!yaml.empty()) cfg.load_yaml(yaml);
    cfg.apply_args(keys);
  };
  build(c);
  if (resume) {
    const std::string out = c.get_string("train.out");
    const std::string ckpt = models::last_checkpoint(out);
    ATTEND_CHECK(!ckpt.empty(), "--resume: {} holds no checkpoint to resume from", out);
    io::Config r = train::train_config();
    r.load_json(train::read_config_json(ckpt), ckpt + "/config.json");
    build(r);
    c = r;
  }
  const auto result = train::train(c, resume);
  if (result.has_best)
    std::printf("best validation %s: %.4f (model in %s/best)\n",
                c.get_string("train.valid_metric").c_str(), result.best_metric,
                c.get_string("train.out").c_str());
  return result.interrupted ? 130 : 0;
}

int cmd_translate(const std::vector<std::string>& args) {
  std::string model_dir, input, output, bad = "error";
  int64_t max_tokens = 2000, max_input = 0;
  decode::SearchOptions so;
  auto to_float = [](const std::string& flag, const std::string& v) {
    try {
      size_t used = 0;
      const double x = std::stod(v, &used);
      if (used == v.size()) return x;
    } catch (const std::exception&) {
    }
    ATTEND_FAIL("option {}: expected a number, got '{}'", flag, v);
  };
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") {
      std::fputs(kTranslateHelp, stdout);
      return 0;
    } else if (a == "-m" || a == "--model") {
      model_dir = value(args, i);
    } else if (a == "-i" || a == "--input") {
      input = value(args, i);
    } else if (a == "-o" || a == "--output") {
      output = value(args, i);
    } else if (a == "--max-tokens" || a == "--batch-tokens") {
      max_tokens = to_int(a, value(args, i));
      ATTEND_CHECK(max_tokens >= 1, "option {}: expected >= 1", a);
    } else if (a == "--max-input-tokens") {
      max_input = to_int(a, value(args, i));
      ATTEND_CHECK(max_input >= 1, "option {}: expected >= 1", a);
    } else if (a == "--beam") {
      so.beam = to_int(a, value(args, i));
    } else if (a == "--alpha") {
      so.alpha = to_float(a, value(args, i));
    } else if (a == "--n-best") {
      so.n_best = to_int(a, value(args, i));
    } else if (a == "--max-extra") {
      so.max_extra = to_int(a, value(args, i));
    } else if (a == "--min-length") {
      so.min_length = to_int(a, value(args, i));
    } else if (a == "--sample") {
      so.sample = true;
    } else if (a == "--temperature") {
      so.temperature = to_float(a, value(args, i));
    } else if (a == "--top-k") {
      so.top_k = to_int(a, value(args, i));
    } else if (a == "--top-p") {
      so.top_p = to_float(a, value(args, i));
    } else if (a == "--seed") {
      so.seed = static_cast<uint64_t>(to_int(a, value(args, i)));
    } else if (a == "--bad-utf8") {
      bad = value(args, i);
      ATTEND_CHECK(bad == "error" || bad == "replace", "--bad-utf8: expected error or replace");
    } else {
      ATTEND_FAIL("translate: unknown option '{}' (see attend translate --help)", a);
    }
  }
  ATTEND_CHECK(!model_dir.empty(), "translate: -m MODEL_DIR is required");
  const bool n_best_out = so.n_best > 1;
  if (so.sample) so.beam = 1;
  try {
    so.validate();
  } catch (const Error& e) {  // name the flags, not the library's fields
    std::string m = e.what();
    for (const auto& [field, flag] : std::vector<std::pair<std::string, std::string>>{
             {"n_best", "--n-best"}, {"max_extra", "--max-extra"}, {"min_length", "--min-length"},
             {"top_k", "--top-k"}, {"top_p", "--top-p"}, {"beam", "--beam"}, {"alpha", "--alpha"},
             {"temperature", "--temperature"}})
      if (const auto at = m.find("search: " + field); at != std::string::npos)
        m.replace(at, 8 + field.size(), "translate: " + flag);
    throw Error(m);
  }
  const models::LoadedModel m = models::load_model_dir(model_dir);
  std::vector<std::string> lines;
  const std::string name = input.empty() ? "<stdin>" : input;
  if (input.empty()) {
    for (std::string l; std::getline(std::cin, l);) {
      if (!l.empty() && l.back() == '\r') l.pop_back();
      lines.push_back(l);
    }
  } else {
    lines = data::read_lines(input);
  }
  decode::TranslateOptions to;
  to.search = so;
  to.batch_tokens = max_tokens;
  to.max_input_tokens = max_input;
  to.replace_bad_utf8 = bad == "replace";
  std::vector<std::string> warnings;
  const auto outs = decode::Translator(m).translate(lines, to, name, &warnings);
  for (const auto& w : warnings) std::fprintf(stderr, "translate: warning: %s\n", w.c_str());
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
  if (output.empty()) {
    std::fwrite(text.data(), 1, text.size(), stdout);
  } else {
    io::write_file_atomic(output, text);
  }
  return 0;
}

int cmd_average(const std::vector<std::string>& args) {
  std::string out;
  std::vector<std::string> dirs;
  int64_t last = 0;
  std::string run;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") {
      std::fputs(kAverageHelp, stdout);
      return 0;
    } else if (a == "-o" || a == "--output") {
      out = value(args, i);
    } else if (a == "--last") {
      last = to_int(a, value(args, i));
      ATTEND_CHECK(last >= 1, "--last: expected >= 1, got {}", last);
      run = value(args, i);
    } else if (a.rfind("-", 0) == 0) {
      ATTEND_FAIL("average: unknown option '{}' (see attend average --help)", a);
    } else {
      dirs.push_back(a);
    }
  }
  ATTEND_CHECK(!out.empty(), "average: -o OUT_DIR is required");
  if (last > 0) {
    const fs::path ck = fs::path(run) / "checkpoints";
    ATTEND_CHECK(fs::is_directory(ck), "{}: not a run directory (no checkpoints/)", run);
    std::vector<std::string> all;
    for (const auto& name : models::list_checkpoints(run)) all.push_back((ck / name).string());
    ATTEND_CHECK(static_cast<int64_t>(all.size()) >= last, "{}: asked for the last {} checkpoints "
                 "but only {} exist", run, last, all.size());
    dirs.assign(all.end() - last, all.end());
  }
  train::average_checkpoints(dirs, out);  // throws "average: no checkpoints given" when empty
  std::printf("average: %zu checkpoints (%s .. %s) -> %s\n", dirs.size(), dirs.front().c_str(),
              dirs.back().c_str(), out.c_str());
  return 0;
}

int cmd_score(const std::vector<std::string>& args) {
  std::vector<std::string> refs, metrics;
  std::string hyp_file;
  eval::BleuOptions o;
  bool json = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") {
      std::fputs(kScoreHelp, stdout);
      return 0;
    } else if (a == "-r" || a == "--refs") {
      while (i + 1 < args.size() && args[i + 1].rfind("-", 0) != 0) refs.push_back(args[++i]);
    } else if (a == "-i" || a == "--input") {
      hyp_file = value(args, i);
    } else if (a == "--tokenize" || a == "-tok") {
      o.tokenize = value(args, i);
      ATTEND_CHECK(o.tokenize == "13a" || o.tokenize == "none",
                   "score: --tokenize expects 13a or none, got '{}'", o.tokenize);
    } else if (a == "--lowercase" || a == "-lc") {
      o.lowercase = true;
    } else if (a == "--metrics" || a == "-m") {
      while (i + 1 < args.size() && args[i + 1].rfind("-", 0) != 0) {
        metrics.push_back(args[++i]);
        ATTEND_CHECK(metrics.back() == "bleu" || metrics.back() == "chrf",
                     "score: --metrics expects bleu and/or chrf, got '{}'", metrics.back());
      }
      ATTEND_CHECK(!metrics.empty(), "score: --metrics needs bleu and/or chrf");
    } else if (a == "--json") {
      json = true;
    } else {
      ATTEND_FAIL("score: unknown option '{}' (see attend score --help)", a);
    }
  }
  ATTEND_CHECK(!refs.empty(), "score: -r REF is required");
  if (metrics.empty()) metrics = {"bleu"};
  const std::string hyp_name = hyp_file.empty() ? "<stdin>" : hyp_file;
  std::vector<std::string> hyps;
  if (hyp_file.empty()) {
    for (std::string l; std::getline(std::cin, l);) {
      if (!l.empty() && l.back() == '\r') l.pop_back();
      hyps.push_back(l);
    }
  } else {
    hyps = data::read_lines(hyp_file);
  }
  auto check_utf8 = [](const std::vector<std::string>& lines, const std::string& name) {
    for (size_t k = 0; k < lines.size(); ++k)
      ATTEND_CHECK(valid_utf8(lines[k]), "score: {}:{}: invalid UTF-8", name, k + 1);
  };
  check_utf8(hyps, hyp_name);
  std::vector<std::vector<std::string>> ref_sets;
  for (const auto& r : refs) {
    ref_sets.push_back(data::read_lines(r));
    check_utf8(ref_sets.back(), r);
    ATTEND_CHECK(ref_sets.back().size() == hyps.size(),
                 "score: {} has {} lines but the hypotheses ({}) have {} lines", r,
                 ref_sets.back().size(), hyp_name, hyps.size());
  }
  std::string out;
  char buf[512];
  for (const auto& metric : metrics) {
    if (metric == "bleu") {
      const eval::BleuScore b = eval::corpus_bleu(hyps, ref_sets, o);
      if (json) {
        std::snprintf(buf, sizeof buf, "\"bleu\": %.2f, \"precisions\": [%.2f, %.2f, %.2f, %.2f], "
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
      if (json) {
        std::snprintf(buf, sizeof buf, "\"chrf\": %.2f, ", c.score);
        out += buf;
      } else {
        out += c.str() + "\n";
      }
    }
  }
  if (json) out = "{" + out + "\"lowercase\": " + (o.lowercase ? "true" : "false") + "}\n";
  std::fputs(out.c_str(), stdout);
  return 0;
}

}  // namespace attend::apps
