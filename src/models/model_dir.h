// Model directories: what inference reads. A model directory holds model.safetensors (weights
// named as in the PyTorch reference), config.json (the model.* keys, and training's keys when
// training wrote it) and tokenizer.model (SentencePiece); a training checkpoint adds
// optimizer.safetensors and trainer_state.json (with CRC-32s of the other files). A run
// directory holds checkpoints/step-N/, checkpoints/last (the newest complete one) and best/.
// Nothing here depends on training: translate, validation and a server load models this way.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "data/tokenizer.h"
#include "nn/transformer.h"

namespace attend::models {

/// Names of the complete checkpoints of a run directory ("step-N"), oldest first; empty when
/// the run has none (unfinished "step-N.tmp" directories are not listed).
std::vector<std::string> list_checkpoints(const std::string& run_dir);
/// The newest complete checkpoint of a run directory ("" when there is none).
std::string last_checkpoint(const std::string& run_dir);

/// Checks that `dir` holds a model (and, with need_training_state, what resuming needs); throws
/// one message naming the first missing or corrupt file.
void verify_model_dir(const std::string& dir, bool need_training_state);

/// Copies a safetensors file into existing tensors (parameters, a moving average). Names,
/// shapes and dtypes must match exactly, both ways (errors name the file and tensor).
void load_weights(const std::string& file, const std::vector<std::pair<std::string, Tensor>>& into);
/// load_weights into the parameters of `model`.
void load_weights(const std::string& file, const nn::Module& model);
/// The SentencePiece model of a model directory (tokenizer.model).
data::Tokenizer read_tokenizer(const std::string& dir);

/// The precision a model directory's weights are stored in: "fp32", or "int8" for a model
/// written by `attend quantize` (config.json's "weights" key; absent: fp32). Anything else is
/// an error naming the file.
std::string stored_precision(const std::string& dir);

/// Sets the precision a loaded model runs in (`precision`: "fp32", "bf16", "int8", or "" for
/// the one it is stored in): fp32 weights can run as stored, as bf16 weights or quantized to
/// int8 at load (nn::Module::store_weights); an int8 model runs in int8 only (anything else is
/// an error naming `flag` and the directory, as is bf16 on a CPU without its kernels).
/// Moves an inference model to the device `device` names (parse_device: "cpu", "cuda",
/// "cuda:N"; empty: stays on the CPU). The device runs fp32 weights: a model whose weights
/// set_precision stored in bf16 or int8 (CPU kernels) is an error naming both flags.
void set_device(nn::Module& model, const std::string& device, const std::string& flag = "--device",
                const std::string& precision_flag = "--precision");
void set_precision(nn::Module& model, const std::string& dir, const std::string& precision,
                   const std::string& flag = "--precision");

/// The model configuration stored in a model directory's config.json (its model.* keys; other
/// keys are training's and are ignored), with vocabulary size and special ids from `tokenizer`.
nn::TransformerConfig read_model_config(const std::string& dir, const data::Tokenizer& tokenizer);

struct LoadedModel {
  std::unique_ptr<nn::EncoderDecoder> model;  // eval mode
  data::Tokenizer tokenizer;
  std::string dir;  // the directory actually read
};

/// The directory a model path names: itself when it holds model.safetensors, else a run
/// directory's best/ model when present, else its last checkpoint; verified (files present,
/// checksums right).
std::string resolve_model_dir(const std::string& path);

/// The family of the model a path names (read from its config.json only, nothing verified or
/// loaded), so a command that takes several families can pick the loader.
nn::Arch model_arch(const std::string& path);

/// A trained encoder-decoder for inference from a model, checkpoint or run directory
/// (resolve_model_dir). An int8 model (stored_precision) loads with its linear layers in int8
/// (nn::Module::store_weights). A model of another family is an error naming its family and the
/// commands that take it.
LoadedModel load_model_dir(const std::string& path);

struct LoadedLanguageModel {
  std::unique_ptr<nn::DecoderOnly> model;  // eval mode
  data::Tokenizer tokenizer;
  std::string dir;
};

/// A trained decoder-only language model, loaded as load_model_dir loads an encoder-decoder.
LoadedLanguageModel load_language_model_dir(const std::string& path);

struct LoadedMaskedModel {
  std::unique_ptr<nn::EncoderOnly> model;  // eval mode
  data::Tokenizer tokenizer;
  std::string dir;
  /// False for an encoder imported without its masked-LM head (config.json's
  /// "converted_from": {"mlm_head": false}): its hidden states are right, its token
  /// predictions are not (see require_token_head).
  bool mlm_head = true;
};

/// A trained encoder-only (masked-LM) model, loaded the same way.
LoadedMaskedModel load_masked_model_dir(const std::string& path);
/// Throws, naming `command` and the commands that take the model, when `m` has no masked-LM
/// head: what predicts tokens (fill-mask, eval-lm) calls this first.
void require_token_head(const LoadedMaskedModel& m, const std::string& command);

}  // namespace attend::models
