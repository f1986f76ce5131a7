// The `attend` command line. Every command lives in its own file (apps/<command>.cpp) and
// registers its flags on a CLI11 subcommand: names, types, defaults, ranges and --help text are
// declared once there, and CLI11 does the parsing and the error wording. When the subcommand
// is chosen, its callback runs the command and stores the process exit code.
#pragma once
#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <vector>

namespace attend::apps {

/// Registers `vocab`, `train`, `translate`, `generate`, `eval-lm`, `fill-mask`, `embed`, `average`,
/// `score`, `demo`, `info` and `serve` on `root`;
/// the chosen command's callback sets `exit_code`.
void add_vocab(CLI::App& root, int& exit_code);
void add_train(CLI::App& root, int& exit_code);
void add_translate(CLI::App& root, int& exit_code);
void add_generate(CLI::App& root, int& exit_code);
void add_eval_lm(CLI::App& root, int& exit_code);
void add_fill_mask(CLI::App& root, int& exit_code);
void add_embed(CLI::App& root, int& exit_code);
void add_average(CLI::App& root, int& exit_code);
void add_quantize(CLI::App& root, int& exit_code);
void add_convert(CLI::App& root, int& exit_code);
void add_score(CLI::App& root, int& exit_code);
void add_demo(CLI::App& root, int& exit_code);
void add_info(CLI::App& root, int& exit_code);
void add_serve(CLI::App& root, int& exit_code);

/// Accepts an integer in [lo, hi]; errors read "--flag: expected an integer, got 'x'" and
/// "--flag: expected lo..hi, got n".
CLI::Validator integer_in(int64_t lo, int64_t hi);

/// The --threads N flag every command has (worker threads, 1..1024; 0 = not given).
CLI::Option* add_threads_flag(CLI::App& command, int& threads);

/// Applies --threads when it was given (the process-wide worker count).
void apply_threads(int threads);

/// The lines of `file`, or of standard input when `file` is empty (a trailing \r is dropped).
std::vector<std::string> read_input_lines(const std::string& file);
/// Writes `text` to `file` atomically, or to standard output when `file` is empty.
void write_output(const std::string& file, const std::string& text);

/// The --device flag of the inference commands: cpu (default), cuda or cuda:N (a CUDA build and
/// a GPU; models::set_device checks both).
CLI::Option* add_device_flag(CLI::App& command, std::string& device);

/// The -m,--model MODEL_DIR flag of the commands that read one model (required).
CLI::Option* add_model_flag(CLI::App& command, std::string& model_dir);

}  // namespace attend::apps
