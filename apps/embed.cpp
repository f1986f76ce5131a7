// `attend embed`: sentence embeddings from an encoder-only model (decode::embed), one per input
// line, as JSON lines or a .npy file. An inference command: nothing here includes train/.
#include "decode/embed.h"

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "apps/cli.h"
#include "core/error.h"
#include "core/utf8.h"
#include "io/file.h"
#include "models/model_dir.h"

namespace attend::apps {
namespace {

struct EmbedArgs {
  std::string model_dir, input, output, pooling = "mean", bad_utf8 = "error", precision, device;
  bool normalize = false;
  int64_t batch_tokens = 8192;
  int threads = 0;
};

// NumPy's .npy format, version 1.0: magic, header length, a Python dict literal padded with
// spaces to a multiple of 64 bytes, then the values little-endian in C order.
std::string npy_f32(const std::vector<float>& values, int64_t rows, int64_t cols) {
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" +
                       std::to_string(rows) + ", " + std::to_string(cols) + "), }";
  const size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header += '\n';
  std::string out = "\x93NUMPY";
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>(header.size() >> 8);
  out += header;
  const size_t at = out.size();
  out.resize(at + values.size() * sizeof(float));
  std::memcpy(out.data() + at, values.data(), values.size() * sizeof(float));  // x86: LE
  return out;
}

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

int embed_command(const EmbedArgs& a) {
  apply_threads(a.threads);
  decode::EmbedOptions o;
  o.pooling = decode::parse_pooling(a.pooling, "--pooling");
  o.normalize = a.normalize;
  o.batch_tokens = a.batch_tokens;
  const models::LoadedMaskedModel m = models::load_masked_model_dir(a.model_dir);
  models::set_precision(*m.model, m.dir, a.precision);
  models::set_device(*m.model, a.device);
  std::vector<std::string> lines = read_input_lines(a.input);
  const std::string name = a.input.empty() ? "<stdin>" : a.input;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (valid_utf8(lines[i])) continue;
    ATTEND_CHECK(a.bad_utf8 == "replace",
                 "{}:{}: invalid UTF-8 (--bad-utf8 replace substitutes U+FFFD)", name, i + 1);
    lines[i] = repair_utf8(lines[i]);
  }
  const Tensor e = decode::embed(*m.model, m.tokenizer, lines, o, name);
  const std::vector<float> values = e.to_vector<float>();
  const int64_t rows = e.size(0), cols = e.size(1);
  if (ends_with(a.output, ".npy")) {
    io::write_file_atomic(a.output, npy_f32(values, rows, cols));
    return 0;
  }
  std::string text;
  for (int64_t r = 0; r < rows; ++r) {
    const nlohmann::json j = {{"embedding", std::vector<float>(values.begin() + r * cols,
                                                               values.begin() + (r + 1) * cols)}};
    text += j.dump() + "\n";
  }
  write_output(a.output, text);
  return 0;
}

}  // namespace

void add_embed(CLI::App& root, int& exit_code) {
  auto a = std::make_shared<EmbedArgs>();
  CLI::App* c = root.add_subcommand(
      "embed", "sentence embeddings from an encoder-only model, one per input line");
  c->footer(
      "Each line is read as the model was trained to read a sentence (beginning id, its\n"
      "subwords, end id, cut to the model's positions) and its last hidden states are pooled.\n"
      "Writes one JSON object {\"embedding\": [...]} per input line, in input order, or a\n"
      "float32 .npy array [lines, d_model] when -o ends in .npy.");
  add_model_flag(*c, a->model_dir);
  c->add_option("-i,--input", a->input, "one text per line (default: standard input)")
      ->option_text("FILE");
  c->add_option("-o,--output", a->output,
                "output file, written atomically; .npy: a NumPy array (default: JSON lines on "
                "standard output)")
      ->option_text("FILE");
  c->add_option("--pooling", a->pooling,
                "mean: the average over all positions; cls: the beginning position's")
      ->check(CLI::IsMember({"mean", "cls"}))
      ->capture_default_str();
  c->add_flag("--normalize", a->normalize, "scale each embedding to unit L2 length");
  c->add_option("--batch-tokens", a->batch_tokens, "padded positions per encoder batch")
      ->check(integer_in(1, INT64_MAX))
      ->capture_default_str();
  c->add_option("--precision", a->precision,
                "fp32, bf16 (bf16 weights; needs AVX-512) or int8 (linear layers quantized at "
                "load). Default: as the model is stored")
      ->check(CLI::IsMember({"fp32", "bf16", "int8"}));
  c->add_option("--bad-utf8", a->bad_utf8,
                "invalid UTF-8 input: stop naming the line (error), or substitute U+FFFD (replace)")
      ->check(CLI::IsMember({"error", "replace"}))
      ->capture_default_str();
  add_device_flag(*c, a->device);
  add_threads_flag(*c, a->threads);
  c->callback([a, &exit_code] { exit_code = embed_command(*a); });
}

}  // namespace attend::apps
