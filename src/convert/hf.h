// HuggingFace checkpoints in attend's terms: a directory as `save_pretrained` writes it
// (config.json, model.safetensors or sharded model-*.safetensors with their index, and the
// tokenizer files) read into the model.* keys, tokenizer and named weights of an attend model.
// Only safetensors are read: pytorch_model.bin is a pickle (loading one runs code) and is
// refused with the command that rewrites it. Every option of the checkpoint that attend does
// not implement is an error naming its key, never a silently different model.
//
// Supported: model_type "bert" (BertModel, BertForMaskedLM with its masked-LM head, the encoder
// of other BertFor* checkpoints; the pooler and next-sentence heads are not imported) with
// absolute positions and exact GELU -- token type 0's embedding is added into the position
// table (attend reads single texts: every token is of type 0); model_type "gpt2"
// (GPT2LMHeadModel, GPT2Model) with tied embeddings.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "data/tokenizer.h"

namespace attend::convert {

struct HfImport {
  std::string model_type;
  /// config.json of the attend model directory: the model.* keys, and "converted_from"
  /// (format, model_type, source directory).
  nlohmann::ordered_json config;
  data::Tokenizer tokenizer;
  std::vector<std::pair<std::string, Tensor>> weights;  // attend parameter names, f32
};

/// Reads a HuggingFace checkpoint directory; errors name the file and the key or tensor.
HfImport import_hf(const std::string& dir);

/// Writes the decoder-only model directory `model_dir` as a GPT-2 checkpoint into `out_dir`
/// (config.json, model.safetensors, and vocab.json + merges.txt for a byte-level BPE
/// vocabulary), atomically; `out_dir` must not exist. What GPT-2's layout cannot express (post-
/// norm, RMSNorm, a gated feed-forward, ...) is an error naming the model key. Returns what was
/// written, for the command's report.
std::string export_gpt2(const std::string& model_dir, const std::string& out_dir);

}  // namespace attend::convert
