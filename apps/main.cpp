// The `attend` command line: one CLI11 application whose subcommands are registered by the
// command files (apps/cli.h). Usage errors exit with status 2, failures with status 1; both
// print one line "attend: error: ...".
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "apps/cli.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "data/corpus.h"
#include "io/file.h"

namespace attend::apps {

CLI::Validator integer_in(int64_t lo, int64_t hi) {
  return CLI::Validator(
      [lo, hi](std::string& s) -> std::string {
        size_t used = 0;
        long long v = 0;
        try {
          v = std::stoll(s, &used);
        } catch (const std::exception&) {
          used = 0;
        }
        if (used == 0 || used != s.size()) return "expected an integer, got '" + s + "'";
        if (v < lo || v > hi)
          return (hi == INT64_MAX ? "expected >= " + std::to_string(lo)
                                  : "expected " + std::to_string(lo) + ".." + std::to_string(hi)) +
                 ", got " + s;
        return "";
      },
      "", "integer_in");
}

CLI::Option* add_threads_flag(CLI::App& command, int& threads) {
  return command
      .add_option("--threads", threads,
                  "worker threads (default: all cores, or ATTEND_NUM_THREADS)")
      ->check(integer_in(1, 1024))
      ->option_text("N");
}

CLI::Option* add_device_flag(CLI::App& command, std::string& device) {
  return command
      .add_option("--device", device,
                  "where the model runs: cpu (default), cuda or cuda:N (a CUDA build and an "
                  "NVIDIA GPU; fp32 only)")
      ->option_text("DEVICE");
}

void apply_threads(int threads) {
  if (threads > 0) set_num_threads(threads);
}

void write_output(const std::string& file, const std::string& text) {
  if (file.empty()) {
    std::fwrite(text.data(), 1, text.size(), stdout);
  } else {
    io::write_file_atomic(file, text);
  }
}

CLI::Option* add_model_flag(CLI::App& command, std::string& model_dir) {
  return command
      .add_option("-m,--model", model_dir,
                  "a checkpoint or a run directory (its best/ model, else its last checkpoint)")
      ->required()
      ->option_text("MODEL_DIR");
}

std::vector<std::string> read_input_lines(const std::string& file) {
  if (!file.empty()) return data::read_lines(file);
  std::vector<std::string> lines;
  for (std::string l; std::getline(std::cin, l);) {
    if (!l.empty() && l.back() == '\r') l.pop_back();
    lines.push_back(l);
  }
  return lines;
}

}  // namespace attend::apps

namespace {

int run(int argc, char** argv) {
  CLI::App app{"attend: train, evaluate and run Transformer models", "attend"};
  app.require_subcommand(1);
  app.footer("`attend COMMAND --help` lists a command's options.");
  int exit_code = 0;
  attend::apps::add_train(app, exit_code);
  attend::apps::add_translate(app, exit_code);
  attend::apps::add_generate(app, exit_code);
  attend::apps::add_eval_lm(app, exit_code);
  attend::apps::add_fill_mask(app, exit_code);
  attend::apps::add_embed(app, exit_code);
  attend::apps::add_vocab(app, exit_code);
  attend::apps::add_average(app, exit_code);
  attend::apps::add_quantize(app, exit_code);
  attend::apps::add_convert(app, exit_code);
  attend::apps::add_score(app, exit_code);
  attend::apps::add_demo(app, exit_code);
  attend::apps::add_info(app, exit_code);
  attend::apps::add_serve(app, exit_code);
  if (argc < 2) {
    std::fputs(app.help().c_str(), stderr);
    return 2;
  }
  // A first word that is neither a flag nor a command is a mistyped command: say so, rather than
  // CLI11's "argument was not expected".
  const std::string first = argv[1];
  const auto named = [&](CLI::App* c) { return c->get_name() == first; };
  ATTEND_CHECK(first.rfind("-", 0) == 0 || !app.get_subcommands(named).empty(),
               "unknown command '{}' (see attend --help)", first);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::fputs(app.help().c_str(), stdout);
    return 0;
  } catch (const CLI::CallForAllHelp&) {
    std::fputs(app.help("", CLI::AppFormatMode::All).c_str(), stdout);
    return 0;
  } catch (const CLI::ParseError& e) {
    // A usage error, reported with the command's name; an unknown flag or stray word is named
    // first, in the order given.
    const CLI::App* sub = app.get_subcommands().empty() ? &app : app.get_subcommands().front();
    const std::string name = sub == &app ? "attend" : sub->get_name();
    std::string message = e.what();
    if (dynamic_cast<const CLI::ExtrasError*>(&e) && !sub->remaining().empty()) {
      const std::string extra = sub->remaining().front();
      message = (extra.rfind("-", 0) == 0 ? "unknown option '" : "unexpected argument '") + extra +
                "' (see attend " + (sub == &app ? "" : name + " ") + "--help)";
    }
    std::fprintf(stderr, "attend: error: %s: %s\n", name.c_str(), message.c_str());
    return 2;
  }
  return exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // progress reaches log files line by line
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "attend: error: %s\n", e.what());
    return 1;
  }
}
