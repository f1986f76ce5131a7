// The Transformer families, built from the blocks in blocks.h: the encoder-decoder of
// "Attention Is All You Need" (embeddings scaled by sqrt(d_model) plus sinusoidal or learned
// positions, N encoder layers, N decoder layers with encoder attention, residual + dropout +
// layer norm -- post-norm as in the paper, pre-norm as an option -- and an output projection
// tied to the shared embedding when the vocabulary is joint); the decoder-only causal language
// model (GPT-style: one causal stack, tied output projection); the encoder-only bidirectional
// model (BERT-style: one stack, tied output projection for masked-token prediction).
// Parameter names match the PyTorch reference in tools/transformer_reference.py.
// Shapes: B batch, S source, T target, D width.
#pragma once
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "nn/blocks.h"

namespace attend::nn {

struct TransformerConfig {
  Arch arch = Arch::kEncoderDecoder;
  int64_t src_vocab = 0, tgt_vocab = 0;  // decoder-only: tgt_vocab; encoder-only: src_vocab
  int64_t d_model = 512, ffn = 2048, heads = 8;
  int64_t encoder_layers = 6, decoder_layers = 6;  // each family uses the stacks it has
  double dropout = 0.1;
  Activation activation = Activation::kRelu;
  Norm norm = Norm::kPost;
  Positions positions = Positions::kSinusoidal;
  int64_t max_positions = 1024;  // learned positions: table size; both: longest sequence
  bool share_embeddings = true;  // one table for source, target and output projection
  bool source_eos = false;       // end every non-empty source with the end-of-sentence id
  bool scale_embeddings = true;  // token embeddings times sqrt(d_model) (the paper; not BERT)
  bool embed_norm = false;       // layer norm over the summed embeddings (BERT)
  double norm_eps = 1e-5;        // epsilon of every layer norm (BERT: 1e-12)
  bool logits_bias = false;      // a learned bias on the output logits (output_bias)
  bool mlm_head = false;         // encoder-only: BERT's transform before the output projection
  double qkv_init_gain = 1.0;    // Xavier gain of the q/k/v projections (training init)
  // T5's departures from the paper (the defaults are the paper's):
  NormType norm_type = NormType::kLayer;  // RMSNorm everywhere
  bool linear_bias = true;                // biases on attention and feed-forward linears
  bool gated_ffn = false;                 // fc2(act(fc1 x) * fc_up x) (T5 v1.1)
  int64_t head_dim = 0;                   // attention head width (0: d_model / heads)
  bool scale_attention = true;            // scores times 1 / sqrt(head width)
  int64_t relative_buckets = 32;          // positions relative: buckets of the score bias
  int64_t relative_max_distance = 128;    // positions relative: the last bucket starts here
  double output_scale = 1.0;              // hidden times this before the output projection
  // Special ids of the model's vocabulary (models::model_config sets them from its tokenizer;
  // decoding reads them here, never from constants). pad, unk and bos are never emitted.
  int32_t pad_id = 0, unk_id = 1, bos_id = 2, eos_id = 3;
  AttentionConfig attention;  // encoder self-attention kind (full | local)

  /// The paper's presets: "base" (512/2048/8/6, dropout 0.1), "big" (1024/4096/16/6, 0.3);
  /// CPU-sized "small" (256/1024/4/3, 0.1) and "tiny" (128/256/4/4, 0.3 -- the Multi30K
  /// Transformer-Tiny). Vocabulary sizes are left at 0 (set from the tokenizer).
  static TransformerConfig preset(const std::string& name);
  /// Throws attend::Error naming the offending key (model.<key>); checks what `arch` uses.
  void validate() const;
  /// Every norm of the model: layer norm or RMSNorm (norm_type), with norm_eps.
  NormKind norm_kind() const { return {norm_eps, norm_type == NormType::kRms}; }
  /// The attention projections' shape from head_dim, linear_bias and scale_attention.
  AttentionShape attention_shape() const {
    return {head_dim > 0 ? head_dim : d_model / std::max<int64_t>(heads, 1), linear_bias,
            scale_attention};
  }
  /// The source ids the encoder reads: `ids`, cut to max_len ids in all when max_len > 0, then
  /// eos_id when source_eos and `ids` is not empty (an empty source stays empty, so it still
  /// translates to an empty line; a cut source still ends with eos_id). Training, validation
  /// and translation all go through this.
  std::vector<int32_t> source(std::vector<int32_t> ids, int64_t max_len = 0) const {
    const int64_t n = static_cast<int64_t>(ids.size()), len = source_length(n);
    const bool eos = len > n;
    if (max_len > 0 && len > max_len)
      ids.resize(static_cast<size_t>(std::max<int64_t>(max_len - eos, 0)));
    if (eos) ids.push_back(eos_id);
    return ids;
  }
  /// How many ids source() makes of n subwords when it cuts nothing (n, plus the end token).
  int64_t source_length(int64_t n) const { return n + (source_eos && n > 0 ? 1 : 0); }
};

/// What every family shares: its config (arch checked, validated), the token table shared by
/// the stacks and the output projection (tied: x E^T), or an output projection of its own, and
/// the sinusoidal position table the stacks share.
class Model : public Module {
 public:
  const TransformerConfig& config() const { return config_; }
  /// Dropout probability in effect (0 outside training mode).
  double active_dropout() const { return training() ? config_.dropout : 0.0; }
  /// hidden [..., D] -> logits [rows, V] through the (tied) output projection, plus
  /// output_bias with model.logits_bias.
  ag::Variable project(const ag::Variable& hidden) const;

 protected:
  /// Checks config.arch == arch and validates; with shared embeddings registers embed_tokens
  /// (vocab rows). Call finish() after registering the stacks.
  Model(const TransformerConfig& config, Arch arch, int64_t vocab, uint64_t seed);
  /// Registers output_projection (untied models) last, as the checkpoint names expect.
  void finish();
  /// int8 (store_weights): a tied model's output projection gets an int8 copy of the token
  /// table, "output_projection.weight" and ".weight_scale" (the names an untied model's
  /// quantized projection has); the table itself stays f32 for the embedding lookups.
  void store_own_weights(DType dtype) override;
  const Embedding* shared() const { return shared_.get(); }
  const ag::Variable& sinusoid() const { return sinusoid_; }

  TransformerConfig config_;

 private:
  std::unique_ptr<Embedding> shared_;
  std::unique_ptr<Linear> output_projection_;
  ag::Variable tied_q_, tied_scale_;  // int8 copy of the tied projection (store_own_weights)
  ag::Variable sinusoid_;  // [max(max_positions, 256), D], constant (sinusoidal positions)
  ag::Variable output_bias_;  // [V] with model.logits_bias
};

/// The encoder-decoder (arch encoder_decoder).
class EncoderDecoder : public Model {
 public:
  /// Parameters initialised from `seed` (Xavier-uniform linears, N(0, D^-1/2) embeddings).
  EncoderDecoder(const TransformerConfig& config, uint64_t seed);

  /// src i32 [B, S] (right-padded), src_lengths i32 [B] -> memory [B, S, D].
  ag::Variable encode(const Tensor& src, const Tensor& src_lengths, uint64_t stream) const;
  /// tgt_in i32 [B, T] (BOS + target, right-padded), tgt_lengths i32 [B] -> hidden [B, T, D].
  ag::Variable decode(const Tensor& tgt_in, const Tensor& tgt_lengths, const ag::Variable& memory,
                      const Tensor& src_lengths, uint64_t stream) const;
  /// A cache shaped for this model's decoder (empty until reserved).
  KvCache make_cache() const;
  /// Writes the encoder-attention keys/values of `memory` [B, S, D] into encoder slots
  /// `slots` (i32 [B]) of every decoder layer (inference only, no tape).
  void write_memory(const Tensor& memory, const Tensor& slots, KvCache& cache) const;
  /// One decoder step for the rows -> hidden [n, D]; each row's keys/values are written into
  /// its slot. Equal to decode() over the row's whole prefix, last position.
  Tensor decode_rows(const DecodeRows& rows, KvCache& cache) const;

  /// encode + decode + project: logits [B * T, V].
  ag::Variable forward(const Tensor& src, const Tensor& src_lengths, const Tensor& tgt_in,
                       const Tensor& tgt_lengths, uint64_t stream) const;

 private:
  std::unique_ptr<Stack> encoder_, decoder_;
};

/// The decoder-only causal language model (arch decoder_only): token ids -> next-token logits.
/// Uses tgt_vocab, decoder_layers; parameters embed_tokens, decoder.*, output_projection when
/// the embeddings are not shared.
class DecoderOnly : public Model {
 public:
  DecoderOnly(const TransformerConfig& config, uint64_t seed);
  /// ids i32 [B, T] (right-padded), lengths i32 [B] -> hidden [B, T, D] (causal).
  ag::Variable hidden(const Tensor& ids, const Tensor& lengths, uint64_t stream) const;
  /// hidden + project: logits [B * T, V]; row (b, t) predicts token t + 1.
  ag::Variable forward(const Tensor& ids, const Tensor& lengths, uint64_t stream) const;
  KvCache make_cache() const { return decoder_->make_cache(); }
  /// One cached step (memory_slots/source_lengths of the rows are unused) -> hidden [n, D];
  /// equal to hidden() over the row's whole prefix, last position.
  Tensor decode_rows(const DecodeRows& rows, KvCache& cache) const;
  /// Reads prompts in one pass into their cache slots (see Stack::prefill) -> hidden [B, T, D].
  Tensor prefill(const Tensor& ids, const Tensor& lengths, const Tensor& slots,
                 KvCache& cache) const {
    return decoder_->prefill(ids, lengths, slots, cache);
  }

 private:
  std::unique_ptr<Stack> decoder_;
};

/// The encoder-only bidirectional model (arch encoder_only): token ids -> per-position logits
/// over the vocabulary (masked-token prediction). Uses src_vocab, encoder_layers, the
/// attention kind; parameters embed_tokens, encoder.*, output_projection when the embeddings
/// are not shared.
class EncoderOnly : public Model {
 public:
  EncoderOnly(const TransformerConfig& config, uint64_t seed);
  /// ids i32 [B, T] (right-padded), lengths i32 [B] -> hidden [B, T, D].
  ag::Variable encode(const Tensor& ids, const Tensor& lengths, uint64_t stream) const;
  /// encode (+ the masked-LM transform with model.mlm_head: layer norm of the activated dense
  /// layer, lm_head_dense and lm_head_layer_norm) + project: logits [B * T, V].
  ag::Variable forward(const Tensor& ids, const Tensor& lengths, uint64_t stream) const;

 private:
  std::unique_ptr<Stack> encoder_;
  std::unique_ptr<Linear> head_dense_;
  std::unique_ptr<LayerNorm> head_norm_;
};

}  // namespace attend::nn
