// `attend average`: averages the weights of several checkpoints into a new model directory.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "apps/cli.h"
#include "core/error.h"
#include "models/model_dir.h"
#include "train/checkpoint.h"

namespace attend::apps {
namespace {

struct AverageArgs {
  std::string output;
  std::vector<std::string> dirs;
  std::pair<int64_t, std::string> last{0, ""};  // --last N RUN_DIR
  int threads = 0;
};

int average(AverageArgs a) {
  apply_threads(a.threads);
  if (const auto& [n, run] = a.last; !run.empty()) {
    ATTEND_CHECK(n >= 1, "average: --last: expected >= 1, got {}", n);
    ATTEND_CHECK(a.dirs.empty(),
                 "average: give checkpoint directories or --last N RUN_DIR, not both");
    const std::filesystem::path ck = std::filesystem::path(run) / "checkpoints";
    ATTEND_CHECK(std::filesystem::is_directory(ck), "{}: not a run directory (no checkpoints/)",
                 run);
    std::vector<std::string> all;
    for (const auto& name : models::list_checkpoints(run)) all.push_back((ck / name).string());
    ATTEND_CHECK(static_cast<int64_t>(all.size()) >= n,
                 "{}: asked for the last {} checkpoints but only {} exist", run, n, all.size());
    a.dirs.assign(all.end() - n, all.end());
  }
  // Throws "average: no checkpoints given" when empty.
  train::average_checkpoints(a.dirs, a.output);
  std::printf("average: %zu checkpoints (%s .. %s) -> %s\n", a.dirs.size(), a.dirs.front().c_str(),
              a.dirs.back().c_str(), a.output.c_str());
  return 0;
}

}  // namespace

void add_average(CLI::App& root, int& exit_code) {
  auto a = std::make_shared<AverageArgs>();
  CLI::App* c = root.add_subcommand("average", "average the weights of several checkpoints");
  c->footer(
      "attend average -o OUT_DIR (--last N RUN_DIR | CHECKPOINT_DIR ...) writes a new model\n"
      "directory.");
  c->add_option("-o,--output", a->output, "the model directory to write")
      ->required()
      ->option_text("OUT_DIR");
  c->add_option("--last", a->last, "the last N checkpoints of the run directory RUN_DIR")
      ->option_text("N RUN_DIR");
  c->add_option("checkpoints", a->dirs, "checkpoint directories")
      ->option_text("CHECKPOINT_DIR ...");
  add_threads_flag(*c, a->threads);
  c->callback([a, &exit_code] { exit_code = average(*a); });
}

}  // namespace attend::apps
