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

enum class Activation { kRelu, kGelu };
enum class Norm { kPost, kPre };  // post: LN(x + sublayer(x)) (the paper); pre: x + sublayer(LN(x))
enum class Positions { kSinusoidal, kLearned };
/// The model.activation / model.norm / model.positions values as enums, parsed once; anything
/// else throws naming the key.
Activation parse_activation(const std::string& name);
Norm parse_norm(const std::string& name);
Positions parse_positions(const std::string& name);

struct TransformerConfig {
  int64_t src_vocab = 0, tgt_vocab = 0;
  int64_t d_model = 512, ffn = 2048, heads = 8;
  int64_t encoder_layers = 6, decoder_layers = 6;
  double dropout = 0.1;
  Activation activation = Activation::kRelu;
  Norm norm = Norm::kPost;
  Positions positions = Positions::kSinusoidal;
  int64_t max_positions = 1024;        // learned positions: table size; both: longest sequence
  bool share_embeddings = true;        // one table for source, target and output projection
  bool source_eos = false;             // end every non-empty source with the end-of-sentence id
  double qkv_init_gain = 1.0;          // Xavier gain of the q/k/v projections (training init)
  // Special ids of the model's vocabulary (models::model_config sets them from its tokenizer;
  // decoding reads them here, never from constants). pad, unk and bos are never emitted.
  int32_t pad_id = 0, unk_id = 1, bos_id = 2, eos_id = 3;
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
  FeedForward(int64_t dim, int64_t ffn, Activation activation, uint64_t seed,
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

struct LayerKv;
struct DecodeRows;

class DecoderLayer : public Module {
 public:
  DecoderLayer(const TransformerConfig& c, uint64_t seed, const std::string& path);
  /// Inference step: x [n, 1, D] -> [n, 1, D]. Row i writes its keys/values at position
  /// rows.positions[i] of self-attention slot rows.self_slots[i] and attends to that slot's
  /// first self_lengths[i] = positions[i] + 1 positions, and to encoder slot rows.memory_slots[i].
  Tensor step(const Tensor& x, LayerKv& cache, const DecodeRows& rows,
              const Tensor& self_lengths) const;
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

/// Incremental-decoding cache of one decoder layer, preallocated (see KvCache): self-attention
/// keys/values [slots, H, capacity, Dh] and encoder-attention keys/values
/// [memory_slots, H, source_capacity, Dh].
struct LayerKv {
  Tensor self_k, self_v, memory_k, memory_v;
};

/// The key/value cache of a decoding session: one LayerKv per decoder layer. A hypothesis owns
/// a self-attention slot (its positions so far), a sentence an encoder slot. reserve() grows it
/// (doubling, contents kept); nothing is copied while decoding within the reserved size.
class KvCache {
 public:
  KvCache(int64_t layers, int64_t heads, int64_t head_dim);
  /// Makes room for at least this many slots and positions (heap memory, kept across calls).
  void reserve(int64_t slots, int64_t positions, int64_t memory_slots, int64_t source_positions);
  int64_t slots() const { return slots_; }
  int64_t positions() const { return positions_; }
  int64_t memory_slots() const { return memory_slots_; }
  int64_t source_positions() const { return source_positions_; }
  /// Copies the first lengths[i] positions of slot from[i] into slot to[i] in every layer.
  void copy_slots(const Tensor& from, const Tensor& to, const Tensor& lengths);
  std::vector<LayerKv> layers;

 private:
  int64_t heads_, head_dim_;
  int64_t slots_ = 0, positions_ = 0, memory_slots_ = 0, source_positions_ = 0;
};

/// The rows of one decoding step (all i32 [n], CPU): row i feeds token tokens[i] at position
/// positions[i], continuing self-attention slot self_slots[i], over encoder slot
/// memory_slots[i] whose source has source_lengths[i] tokens. Rows may sit at different
/// positions (requests join a running batch).
struct DecodeRows {
  Tensor tokens, positions, self_slots, memory_slots, source_lengths;
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
  /// A cache shaped for this model's decoder (empty until reserved).
  KvCache make_cache() const;
  /// Writes the encoder-attention keys/values of `memory` [B, S, D] into encoder slots
  /// `slots` (i32 [B]) of every decoder layer (inference only, no tape).
  void write_memory(const Tensor& memory, const Tensor& slots, KvCache& cache) const;
  /// One decoder step for the rows -> hidden [n, D]; each row's keys/values are written into
  /// its slot. Equal to decode() over the row's whole prefix, last position.
  Tensor decode_rows(const DecodeRows& rows, KvCache& cache) const;

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
  /// The sinusoidal table for n positions: the one built at construction (max_positions rows)
  /// when it is long enough, else a longer one built for this call (the model never mutates,
  /// so threads may share it).
  ag::Variable sinusoid_table(int64_t n) const;
  ag::Variable sinusoid_;  // [max(max_positions, 256), D], constant
  // Module trees for the "encoder." and "decoder." name prefixes.
  Container encoder_, decoder_;
};

}  // namespace attend::nn
