// The encoder-decoder Transformer of "Attention Is All You Need": embeddings scaled by
// sqrt(d_model) plus sinusoidal (or learned) positions, N encoder layers (self-attention, FFN),
// N decoder layers (causal self-attention, encoder attention, FFN), residual + dropout + layer
// norm (post-norm as in the paper, pre-norm as an option), and an output projection tied to
// the shared embedding when the vocabulary is joint. Parameter names match the PyTorch
// reference in tools/transformer_reference.py. Shapes: B batch, S source, T target, D width.
#pragma once
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "nn/layers.h"

namespace attend::nn {

struct TransformerConfig {
  int64_t src_vocab = 0, tgt_vocab = 0;
  int64_t d_model = 512, ffn = 2048, heads = 8;
  int64_t encoder_layers = 6, decoder_layers = 6;
  double dropout = 0.1;
  std::string activation = "relu";     // relu | gelu
  std::string norm = "post";           // post (paper) | pre
  std::string positions = "sinusoidal";  // sinusoidal | learned
  int64_t max_positions = 1024;        // learned positions: table size; both: longest sequence
  bool share_embeddings = true;        // one table for source, target and output projection
  bool source_eos = false;             // end every non-empty source with the end-of-sentence id
  double qkv_init_gain = 1.0;          // Xavier gain of the q/k/v projections (training init)
  int32_t pad_id = 0, eos_id = 3;
  AttentionConfig attention;           // encoder self-attention kind (full | local)

  /// The paper's presets: "base" (512/2048/8/6, dropout 0.1), "big" (1024/4096/16/6, 0.3);
  /// CPU-sized "small" (256/1024/4/3, 0.1) and "tiny" (128/256/4/4, 0.3 -- the Multi30K
  /// Transformer-Tiny). Vocabulary sizes are left at 0 (set from the tokenizer).
  static TransformerConfig preset(const std::string& name);
  /// Throws attend::Error naming the offending key (model.<key>).
  void validate() const;
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

/// Sinusoidal position table [n, d]: PE(p, 2i) = sin(p / 10000^(2i/d)), PE(p, 2i+1) = cos(...).
Tensor sinusoidal_positions(int64_t n, int64_t d);

class FeedForward : public Module {
 public:
  FeedForward(int64_t dim, int64_t ffn, const std::string& activation, uint64_t seed,
              const std::string& path);
  ag::Variable forward(const ag::Variable& x) const;  // fc2(act(fc1(x)))
  Linear fc1, fc2;
  bool gelu;
};

class EncoderLayer : public Module {
 public:
  EncoderLayer(const TransformerConfig& c, uint64_t seed, const std::string& path);
  ag::Variable forward(const ag::Variable& x, const ops::AttentionMask& mask, double dropout,
                       uint64_t stream) const;
  MultiHeadAttention self_attn;
  LayerNorm self_attn_layer_norm;
  FeedForward ffn;
  LayerNorm final_layer_norm;
  bool pre_norm;
};

struct LayerCache;

class DecoderLayer : public Module {
 public:
  DecoderLayer(const TransformerConfig& c, uint64_t seed, const std::string& path);
  /// Inference step: x [B, 1, D] with the layer's cache -> [B, 1, D]. Row r continues the
  /// cache's self-attention row self_rows[r] (row r when self_rows is empty).
  /// Row r reads row memory_rows[r] of the encoder cache (i32 [B]; undefined: row r).
  Tensor step(const Tensor& x, LayerCache& cache, const ops::AttentionMask& memory_mask,
              const Tensor& memory_rows = {}, const std::vector<int64_t>& self_rows = {}) const;
  ag::Variable forward(const ag::Variable& x, const ag::Variable& memory,
                       const ops::AttentionMask& self_mask, const ops::AttentionMask& memory_mask,
                       double dropout, uint64_t stream) const;
  MultiHeadAttention self_attn;
  LayerNorm self_attn_layer_norm;
  MultiHeadAttention encoder_attn;
  LayerNorm encoder_attn_layer_norm;
  FeedForward ffn;
  LayerNorm final_layer_norm;
  bool pre_norm;
};

/// Incremental-decoding state of one decoder layer: self-attention keys/values of the
/// positions decoded so far (grown every step), [rows, H, t, Dh], and the encoder-attention
/// keys/values (computed once per source batch, never copied), [sentences, H, S, Dh].
struct LayerCache {
  Tensor self_k, self_v, memory_k, memory_v;
};

struct DecoderState {
  std::vector<LayerCache> layers;
  Tensor src_lengths;  // i32 [rows]: source length of each row's sentence
  Tensor memory_rows;  // i32 [rows]: the encoder-cache row (sentence) each row reads
  int64_t position = 0;  // positions decoded so far
  std::vector<int64_t> self_rows;  // pending reorder of the self-attention caches (empty: none)
};

class Transformer : public Module {
 public:
  /// Parameters initialised from `seed` (Xavier-uniform linears, N(0, D^-1/2) embeddings).
  Transformer(const TransformerConfig& config, uint64_t seed);

  /// src i32 [B, S] (right-padded), src_lengths i32 [B] -> memory [B, S, D].
  ag::Variable encode(const Tensor& src, const Tensor& src_lengths, uint64_t stream) const;
  /// tgt_in i32 [B, T] (BOS + target, right-padded), tgt_lengths i32 [B] -> hidden [B, T, D].
  ag::Variable decode(const Tensor& tgt_in, const Tensor& tgt_lengths, const ag::Variable& memory,
                      const Tensor& src_lengths, uint64_t stream) const;
  /// Starts incremental decoding over `memory` [B, S, D] (inference only, no tape).
  DecoderState start_decoding(const Tensor& memory, const Tensor& src_lengths) const;
  /// One decoder step for tokens i32 [B] at position state.position -> hidden [B, D]; the
  /// caches grow by one position. Equal to decode() over the whole prefix, last position.
  Tensor decode_step(const Tensor& tokens, DecoderState& state) const;
  /// Keeps rows `rows` of every cache (beam reordering / dropping finished sentences); the
  /// encoder keys/values are shared, not copied: rows only change which sentence they read. With
  /// self_only the sentence of each row stays as it is: right when row j after the call belongs
  /// to the same sentence as row j before it (beams reordered in place).
  static void select_rows(DecoderState& state, const std::vector<int64_t>& rows,
                          bool self_only = false);

  /// hidden [..., D] -> logits [rows, V] through the (tied) output projection.
  ag::Variable project(const ag::Variable& hidden) const;
  /// encode + decode + project: logits [B * T, V].
  ag::Variable forward(const Tensor& src, const Tensor& src_lengths, const Tensor& tgt_in,
                       const Tensor& tgt_lengths, uint64_t stream) const;

  const TransformerConfig& config() const { return config_; }
  /// Dropout probability in effect (0 outside training mode).
  double active_dropout() const { return training() ? config_.dropout : 0.0; }

 private:
  ag::Variable embed(const Embedding& table, const Embedding* learned, const Tensor& ids,
                     uint64_t stream) const;

  TransformerConfig config_;
  uint64_t seed_;
  std::unique_ptr<Embedding> shared_, encoder_embed_, decoder_embed_;
  std::unique_ptr<Embedding> encoder_positions_, decoder_positions_;
  std::unique_ptr<Linear> output_projection_;
  std::vector<std::unique_ptr<EncoderLayer>> encoder_layers_;
  std::vector<std::unique_ptr<DecoderLayer>> decoder_layers_;
  std::unique_ptr<LayerNorm> encoder_norm_, decoder_norm_;  // pre-norm only
  /// The constant sinusoidal table with at least n rows (grown on demand, doubling).
  const ag::Variable& sinusoid_table(int64_t n) const;
  mutable ag::Variable sinusoid_;  // [rows, D]
  // Module trees for the "encoder." and "decoder." name prefixes.
  Container encoder_, decoder_;
};

}  // namespace attend::nn
