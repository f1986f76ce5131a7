// `attend convert --from hf`: a HuggingFace checkpoint (convert::import_hf) written as an ordinary
// attend model directory (atomically, with checksums), which embed, eval-lm, quantize and serve
// load like any other.
#include <cstdio>
#include <filesystem>
#include <iterator>
#include <map>
#include <memory>
#include <string>

#include "apps/cli.h"
#include "convert/hf.h"
#include "core/error.h"
#include "models/config.h"
#include "nn/transformer.h"
#include "train/checkpoint.h"

namespace attend::apps {
namespace {

namespace fs = std::filesystem;

struct ConvertArgs {
  std::string from, to, input, output;
};

// Copies the imported weights into `model` (every parameter from exactly one tensor) and
// writes the model directory; returns the number of parameters.
// The imported tensors are released as they are copied: the peak is about the model plus the
// file being written.
int64_t save(const nn::Module& model, convert::HfImport& hf, const ConvertArgs& a) {
  std::map<std::string, Tensor> weights(std::make_move_iterator(hf.weights.begin()),
                                        std::make_move_iterator(hf.weights.end()));
  hf.weights.clear();
  int64_t count = 0;
  for (const auto& [name, p] : model.named_parameters()) {
    const auto it = weights.find(name);
    ATTEND_CHECK(it != weights.end(), "convert: {}: nothing in the checkpoint becomes '{}'",
                 a.input, name);
    Tensor dst = p.value();
    ATTEND_CHECK(it->second.shape() == dst.shape(), "convert: {}: '{}' is {} but the model has {}",
                 a.input, name, it->second.str(), dst.str());
    dst.copy_from(it->second);
    count += dst.numel();
    weights.erase(it);
  }
  ATTEND_CHECK(weights.empty(), "convert: {}: '{}' has no place in the model", a.input,
               weights.empty() ? "" : weights.begin()->first);
  // Written into OUT.tmp and renamed into place: an interrupted run leaves no OUT.
  train::save_checkpoint(a.output, model, nullptr, hf.config.dump(2), hf.tokenizer, {});
  return count;
}

int convert(const ConvertArgs& a) {
  ATTEND_CHECK(a.from.empty() != a.to.empty(),
               "convert: give one of --from hf (a HuggingFace checkpoint to an attend model) and "
               "--to hf (an attend model to a HuggingFace checkpoint)");
  if (!a.to.empty()) {
    const std::string wrote = convert::export_gpt2(a.input, a.output);
    std::printf("convert: %s -> %s (GPT-2 layout: %s)\n", a.input.c_str(), a.output.c_str(),
                wrote.c_str());
    return 0;
  }
  ATTEND_CHECK(a.from == "hf", "convert: --from: expected hf, got '{}'", a.from);
  ATTEND_CHECK(!fs::exists(a.output),
               "convert: -o {}: already exists (choose a new directory; nothing was written)",
               a.output);
  convert::HfImport hf = convert::import_hf(a.input);
  const nn::TransformerConfig config = models::model_config(
      models::model_keys_of(hf.config, a.input + " (converted)"), 0, &hf.tokenizer);
  const int64_t count =
      config.arch == nn::Arch::kEncoderOnly   ? save(nn::EncoderOnly(config, 1), hf, a)
      : config.arch == nn::Arch::kDecoderOnly ? save(nn::DecoderOnly(config, 1), hf, a)
                                              : save(nn::EncoderDecoder(config, 1), hf, a);
  const std::string layers = config.arch == nn::Arch::kEncoderOnly
                                 ? std::to_string(config.encoder_layers)
                             : config.arch == nn::Arch::kDecoderOnly
                                 ? std::to_string(config.decoder_layers)
                                 : format("{}+{}", config.encoder_layers, config.decoder_layers);
  std::printf(
      "convert: %s (%s, %s layers, d_model %lld, %.1fM parameters, vocabulary %lld) "
      "-> %s\n",
      a.input.c_str(), hf.model_type.c_str(), layers.c_str(),
      static_cast<long long>(config.d_model), static_cast<double>(count) / 1e6,
      static_cast<long long>(hf.tokenizer.vocab_size()), a.output.c_str());
  return 0;
}

}  // namespace

void add_convert(CLI::App& root, int& exit_code) {
  auto a = std::make_shared<ConvertArgs>();
  CLI::App* c = root.add_subcommand(
      "convert",
      "write a HuggingFace checkpoint (safetensors) as an attend model directory, or back");
  c->footer(
      "attend convert --from hf HF_DIR -o MODEL_DIR reads config.json, model.safetensors (or its\n"
      "shards) and the tokenizer files of a checkpoint saved by transformers, and writes an\n"
      "attend model directory atomically. Reads model_type bert and distilbert (and their\n"
      "sentence-embedding descendants, for attend embed), gpt2 (for generate and eval-lm) and\n"
      "marian (MarianMT / OPUS-MT) and t5 (for translate and score). pytorch_model.bin (a\n"
      "pickle) is never read.\n"
      "attend convert --to hf MODEL_DIR -o HF_DIR writes a decoder-only model as a GPT-2\n"
      "checkpoint (config.json, model.safetensors; vocab.json and merges.txt for a byte-level\n"
      "BPE vocabulary) that transformers and ct2-transformers-converter load.");
  c->add_option("--from", a->from, "the input's format (a HuggingFace checkpoint)")
      ->check(CLI::IsMember({"hf"}))
      ->option_text("hf");
  c->add_option("--to", a->to, "the output's format (a HuggingFace checkpoint)")
      ->check(CLI::IsMember({"hf"}))
      ->option_text("hf");
  c->add_option("input", a->input, "the checkpoint (--from) or model (--to) directory")
      ->required()
      ->option_text("DIR");
  c->add_option("-o,--output", a->output, "the directory to write (must not exist)")
      ->required()
      ->option_text("OUT_DIR");
  c->callback([a, &exit_code] { exit_code = convert(*a); });
}

}  // namespace attend::apps
