// The `attend` command line: subcommands dispatch here; exceptions become a one-line error
// message and a non-zero exit code.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "apps/commands.h"
#include "apps/demo.h"
#include "core/device.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "ops/ops.h"

namespace {

const char* kUsage =
    "usage: attend <command> [options]\n"
    "\n"
    "commands:\n"
    "  train      train an encoder-decoder Transformer (attend train --help lists every key)\n"
    "  translate  translate text with a trained model (beam search, greedy or sampling)\n"
    "  vocab      train a SentencePiece subword model\n"
    "  average    average the weights of several checkpoints\n"
    "  score      corpus BLEU of a translation against references (sacreBLEU's defaults)\n"
    "  demo       train a tiny Transformer encoder on generated data (reverse digit sequences)\n"
    "             and report held-out accuracy\n"
    "  info       show threads, GEMM library and CUDA devices\n"
    "\n"
    "common options:\n"
    "  --threads N     worker threads (default: all cores, or ATTEND_NUM_THREADS)\n"
    "  --help          this text\n"
    "\n"
    "demo options:\n"
    "  --steps N       training steps (default 600)\n"
    "  --seed N        data and initialisation seed (default 1)\n"
    "  --min-accuracy F  exit with status 1 when held-out exact match is below F (0..1)\n";

int64_t parse_int(const std::string& flag, const char* v) {
  char* end = nullptr;
  const long long x = std::strtoll(v, &end, 10);
  ATTEND_CHECK(end && *end == '\0' && end != v, "option {}: expected an integer, got '{}'", flag, v);
  return x;
}

double parse_double(const std::string& flag, const char* v) {
  char* end = nullptr;
  const double x = std::strtod(v, &end);
  ATTEND_CHECK(end && *end == '\0' && end != v, "option {}: expected a number, got '{}'", flag, v);
  return x;
}

int run(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const std::string cmd = argv[1];
  // --threads N is common to every command and taken out of the arguments here. For train it
  // becomes the key train.threads, so that it overrides CONFIG.yaml like any command-line key.
  std::vector<std::string> rest;
  for (int i = 2; i < argc; ++i) {
    if (std::strcmp(argv[i], "--threads") != 0) {
      rest.emplace_back(argv[i]);
      continue;
    }
    ATTEND_CHECK(i + 1 < argc, "option --threads needs a value");
    const int64_t n = parse_int("--threads", argv[++i]);
    ATTEND_CHECK(n >= 1 && n <= 1024, "option --threads: expected 1..1024, got {}", n);
    if (cmd == "train") {
      rest.insert(rest.end(), {"--train.threads", std::to_string(n)});
    } else {
      attend::set_num_threads(static_cast<int>(n));
    }
  }
  if (cmd == "train") return attend::apps::cmd_train(rest);
  if (cmd == "translate") return attend::apps::cmd_translate(rest);
  if (cmd == "vocab") return attend::apps::cmd_vocab(rest);
  if (cmd == "average") return attend::apps::cmd_average(rest);
  if (cmd == "score") return attend::apps::cmd_score(rest);
  attend::apps::DemoOptions demo;
  double min_accuracy = -1.0;
  for (size_t i = 0; i < rest.size(); ++i) {
    const std::string& flag = rest[i];
    if (flag == "--help" || flag == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    ATTEND_CHECK(i + 1 < rest.size(), "option {} needs a value", flag);
    const char* v = rest[++i].c_str();
    if (flag == "--steps" && cmd == "demo") {
      demo.steps = parse_int(flag, v);
      ATTEND_CHECK(demo.steps >= 1, "option --steps: expected >= 1, got {}", demo.steps);
    } else if (flag == "--seed" && cmd == "demo") {
      demo.seed = static_cast<uint64_t>(parse_int(flag, v));
    } else if (flag == "--min-accuracy" && cmd == "demo") {
      min_accuracy = parse_double(flag, v);
    } else {
      ATTEND_FAIL("unknown option '{}' for '{}' (see attend --help)", flag, cmd);
    }
  }
  if (cmd == "demo") {
    const double acc = attend::apps::run_demo(demo);
    if (min_accuracy >= 0 && acc < min_accuracy) {
      std::fprintf(stderr, "attend: held-out accuracy %.3f is below --min-accuracy %.3f\n", acc,
                   min_accuracy);
      return 1;
    }
    return 0;
  }
  if (cmd == "info") {
    std::printf("attend 0.1.0\nthreads: %d\ngemm: %s\ncuda: %s, %d device(s)\n",
                attend::num_threads(),
                attend::ops::cpu_gemm_library_name(),
                attend::built_with_cuda() ? "built" : "not built", attend::cuda_device_count());
    return 0;
  }
  ATTEND_FAIL("unknown command '{}' (see attend --help)", cmd);
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
