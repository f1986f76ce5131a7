// `attend train`: configuration keys (defaults < CONFIG.yaml < --section.key VALUE, or the
// checkpoint's config.json first when resuming), then train::train.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "apps/cli.h"
#include "core/error.h"
#include "train/options.h"
#include "train/trainer.h"

namespace attend::apps {
namespace {

struct TrainArgs {
  bool resume = false;
  int threads = 0;
};

int train_command(const TrainArgs& a, std::vector<std::string> keys) {
  // --threads N is the key train.threads, given last so that it wins over every other source.
  if (a.threads > 0) keys.insert(keys.end(), {"--train.threads", std::to_string(a.threads)});
  // The positional CONFIG.yaml is what remains after the --key value pairs.
  std::string yaml;
  {
    io::Config probe = train::train_config();
    for (const auto& r : probe.apply_args(keys)) {
      ATTEND_CHECK(r.rfind("--", 0) != 0,
                   "train: unknown option or key '{}' (attend train --help lists every key)", r);
      ATTEND_CHECK(yaml.empty(), "train: unexpected argument '{}' (one config file at most)", r);
      yaml = r;
    }
  }
  const io::Config c = train::run_config(
      [&](io::Config& cfg) {  // defaults/checkpoint < YAML < command line
        if (!yaml.empty()) cfg.load_yaml(yaml);
        cfg.apply_args(keys);
      },
      a.resume, "--resume");
  const auto result = train::train(c, a.resume);
  if (result.has_best)
    std::printf("best validation %s: %.4f (model in %s/best)\n", result.best_metric_name.c_str(),
                result.best_metric, c.get_string("train.out").c_str());
  return result.interrupted ? 130 : 0;
}

}  // namespace

void add_train(CLI::App& root, int& exit_code) {
  auto a = std::make_shared<TrainArgs>();
  CLI::App* c = root.add_subcommand(
      "train", "train a translation or language model (--help lists every key)");
  // The configuration keys are not CLI11 options: io::Config owns their names, types, defaults
  // and errors (which name the key and where its value came from); CLI11 passes them through.
  c->allow_extras();
  c->add_flag("--resume", a->resume, "continue train.out's last checkpoint");
  add_threads_flag(*c, a->threads)->description("worker threads (the key train.threads)");
  c->footer(
      "attend train [CONFIG.yaml] [--section.key VALUE ...] [--resume]\n"
      "Trains an encoder-decoder on sentence pairs (data.train_src, data.train_tgt), or on text\n"
      "(data.train_text) a decoder-only language model (model.arch decoder_only) or an\n"
      "encoder-only masked-LM model (encoder_only). Keys come from the defaults below, then\n"
      "CONFIG.yaml, then the command line. --resume continues train.out's last checkpoint\n"
      "exactly (its config.json is the base; keys given here override it, e.g. a larger\n"
      "train.max_steps). Ctrl-C (SIGINT) or SIGTERM saves a checkpoint before exiting.\n\n"
      "configuration keys (--section.key VALUE):\n" +
      train::train_config().help());
  c->callback([a, c, &exit_code] { exit_code = train_command(*a, c->remaining()); });
}

}  // namespace attend::apps
