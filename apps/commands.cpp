// vocab, train, translate and average (see commands.h).
#include "apps/commands.h"

#include <cstdio>
#include <filesystem>
#include <iostream>

#include "core/error.h"
#include "core/thread_pool.h"
#include "data/corpus.h"
#include "data/tokenizer.h"
#include "decode/greedy.h"
#include "eval/bleu.h"
#include "io/file.h"
#include "io/safetensors.h"
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
    "usage: attend translate -m MODEL_DIR [-i INPUT] [-o OUTPUT] [--max-tokens N] [--threads N]\n"
    "                        [--bad-utf8 error|replace] [--max-extra N]\n"
    "Translates one sentence per line (standard input when -i is absent) with greedy search.\n"
    "MODEL_DIR is a checkpoint or a run directory (its best/ model, else its last checkpoint).\n";

const char* kScoreHelp =
    "usage: attend score -r REF [REF ...] [-i HYP] [--tokenize 13a|none] [--lowercase] [--json]\n"
    "Corpus BLEU as sacreBLEU computes it by default (13a tokenization, exponential smoothing);\n"
    "hypotheses from standard input when -i is absent; several reference files allowed.\n";

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
      ATTEND_CHECK(data::valid_utf8(lines[k]), "{}:{}: invalid UTF-8", f, k + 1);
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
    const std::string ckpt = train::last_checkpoint(out);
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
  int64_t max_tokens = 2000;
  decode::GreedyOptions go;
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
    } else if (a == "--max-extra") {
      go.max_extra = to_int(a, value(args, i));
    } else if (a == "--threads") {
      set_num_threads(static_cast<int>(to_int(a, value(args, i))));
    } else if (a == "--bad-utf8") {
      bad = value(args, i);
      ATTEND_CHECK(bad == "error" || bad == "replace", "--bad-utf8: expected error or replace");
    } else {
      ATTEND_FAIL("translate: unknown option '{}' (see attend translate --help)", a);
    }
  }
  ATTEND_CHECK(!model_dir.empty(), "translate: -m MODEL_DIR is required");
  const train::LoadedModel m = train::load_model_dir(model_dir);
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
  std::vector<data::Example> ex(lines.size());
  for (size_t i = 0; i < lines.size(); ++i) {
    if (!data::valid_utf8(lines[i])) {
      ATTEND_CHECK(bad == "replace", "{}:{}: invalid UTF-8 (--bad-utf8 replace substitutes U+FFFD)",
                   name, i + 1);
      lines[i] = data::repair_utf8(lines[i]);
    }
    ex[i].src = m.tokenizer.encode(lines[i]);
  }
  const auto outs = decode::greedy_all(*m.model, ex, max_tokens, go);
  std::string text;
  for (size_t i = 0; i < outs.size(); ++i) text += (ex[i].src.empty() ? "" : m.tokenizer.decode(outs[i])) + "\n";
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
    for (const auto& name : train::list_checkpoints(run)) all.push_back((ck / name).string());
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
  std::vector<std::string> refs;
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
    } else if (a == "--lowercase" || a == "-lc") {
      o.lowercase = true;
    } else if (a == "--json") {
      json = true;
    } else {
      ATTEND_FAIL("score: unknown option '{}' (see attend score --help)", a);
    }
  }
  ATTEND_CHECK(!refs.empty(), "score: -r REF is required");
  std::vector<std::string> hyps;
  if (hyp_file.empty()) {
    for (std::string l; std::getline(std::cin, l);) hyps.push_back(l);
  } else {
    hyps = data::read_lines(hyp_file);
  }
  std::vector<std::vector<std::string>> ref_sets;
  for (const auto& r : refs) {
    ref_sets.push_back(data::read_lines(r));
    ATTEND_CHECK(ref_sets.back().size() == hyps.size(),
                 "score: {} has {} lines but the hypotheses ({}) have {} lines", r,
                 ref_sets.back().size(), hyp_file.empty() ? "<stdin>" : hyp_file, hyps.size());
  }
  const eval::BleuScore b = eval::corpus_bleu(hyps, ref_sets, o);
  if (json) {
    std::printf("{\"bleu\": %.2f, \"precisions\": [%.2f, %.2f, %.2f, %.2f], \"bp\": %.4f, "
                "\"hyp_len\": %lld, \"ref_len\": %lld, \"tokenize\": \"%s\", \"lowercase\": %s}\n",
                b.score, b.precisions[0], b.precisions[1], b.precisions[2], b.precisions[3],
                b.brevity_penalty, static_cast<long long>(b.sys_len),
                static_cast<long long>(b.ref_len), o.tokenize.c_str(), o.lowercase ? "true" : "false");
  } else {
    std::printf("%s\n", b.str().c_str());
  }
  return 0;
}

}  // namespace attend::apps
