// The blocks every Transformer family is built from: the feed-forward sublayer, one layer
// implementation (self-attention, optional encoder attention, feed-forward, each inside the
// residual/norm helper), a stack of layers with its embeddings, and the incremental-decoding
// cache. A layer's forward takes an optional cache: training and full-sequence passes run
// without one; decoding steps run the same code with one (keys and values of earlier
// positions are read from the cache, this step's are written into it). Shapes: B batch,
// T positions, D width, H heads, Dh = D / H.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "nn/layers.h"

namespace attend::nn {

// gelu: exact (erf); gelu_tanh: GPT-2's; silu: x sigmoid(x) (Marian's "swish")
enum class Activation { kRelu, kGelu, kGeluTanh, kSilu };
enum class Norm { kPost, kPre };  // post: LN(x + sublayer(x)) (the paper); pre: x + sublayer(LN(x))
enum class NormType { kLayer, kRms };  // every norm of the model: layer norm, or RMSNorm (T5)
// sinusoidal: the paper's table, sin and cos interleaved; sinusoidal_halves: the same
// frequencies with every sin in the first half of the columns and every cos in the second
// (Marian's, fairseq's); learned: a trained table of model.max_positions rows; relative: none
// added to the embeddings, a learned bias on the self-attention scores by bucketed relative
// position instead (T5's; see relative_bucket).
enum class Positions { kSinusoidal, kSinusoidalHalves, kLearned, kRelative };
/// The model families: the paper's encoder-decoder; decoder-only (GPT-style causal language
/// model); encoder-only (BERT-style bidirectional encoder).
enum class Arch { kEncoderDecoder, kDecoderOnly, kEncoderOnly };
/// The model.activation / model.norm / model.positions / model.arch values as enums, parsed
/// once; anything else throws naming the key.
Activation parse_activation(const std::string& name);
Norm parse_norm(const std::string& name);
NormType parse_norm_type(const std::string& name);
Positions parse_positions(const std::string& name);
Arch parse_arch(const std::string& name);
/// The value names of the keys above (what parse_* reads).
const char* activation_name(Activation activation);
const char* norm_name(Norm norm);
const char* norm_type_name(NormType type);
const char* positions_name(Positions positions);
const char* arch_name(Arch arch);

/// The activation function applied to x.
ag::Variable activate(const ag::Variable& x, Activation activation);

/// Sinusoidal position table [n, d]: PE(p, 2i) = sin(p / 10000^(2i/d)), PE(p, 2i+1) = cos(...);
/// with `halves` the sin of frequency i is column i and its cos column d/2 + i (d even).
Tensor sinusoidal_positions(int64_t n, int64_t d, bool halves = false);

/// T5's bucket of a relative position rel = key - query: `buckets` buckets (half of them for
/// keys after the query when bidirectional; none for them otherwise, where a causal mask hides
/// them), exact below half of the remaining buckets, then logarithmic up to max_distance, beyond
/// which all share the last bucket. Computed in float as transformers computes it, so that
/// imported models see the same buckets.
int32_t relative_bucket(int64_t rel, bool bidirectional, int64_t buckets, int64_t max_distance);

/// Dropout stream of one (layer, site) of a step: no two dropout masks in a step coincide.
uint64_t dropout_site(uint64_t stream, uint64_t layer, uint64_t where);
/// The Philox seed of every dropout mask (the stream tells masks apart).
inline constexpr uint64_t kDropoutSeed = 0xd709;

/// fc2(act(fc1(x))), or gated (a GLU: T5 v1.1) fc2(act(fc1(x)) * fc_up(x)).
class FeedForward : public Module {
 public:
  FeedForward(int64_t dim, int64_t ffn, Activation activation, uint64_t seed,
              const std::string& path, bool bias = true, bool gated = false);
  ag::Variable forward(const ag::Variable& x) const;
  Linear fc1, fc2;
  std::unique_ptr<Linear> fc_up;  // gated only
  Activation activation;
};

/// The incremental state of one layer: its self-attention and (when it has one) its
/// encoder-attention view.
struct LayerCache {
  KvView self, memory;
};

/// What a layer's forward reads besides x: masks, and the encoder output for cross-attention
/// (unused when a cache is given: the encoder's keys/values are in the cache).
struct LayerInputs {
  ops::AttentionMask self_mask;
  ag::Variable self_bias;  // relative positions: the self-attention score bias (ops::attention)
  ag::Variable memory;  // [B, S, D]
  ops::AttentionMask memory_mask;
};

struct TransformerConfig;

/// While alive, every encoder attention that a layer computes on this thread without a cache
/// (a whole teacher-forced pass) also records its weights: one [B, H, T, S] tensor per decoder
/// layer, in layer order (MultiHeadAttention::probabilities). Outputs are unchanged.
class CrossAttentionProbe {
 public:
  CrossAttentionProbe();
  ~CrossAttentionProbe();
  CrossAttentionProbe(const CrossAttentionProbe&) = delete;
  CrossAttentionProbe& operator=(const CrossAttentionProbe&) = delete;
  const std::vector<Tensor>& weights() const { return weights_; }
  /// The probe alive on this thread (null: none).
  static CrossAttentionProbe* active();
  void add(Tensor probabilities) { weights_.push_back(std::move(probabilities)); }

 private:
  std::vector<Tensor> weights_;
  CrossAttentionProbe* previous_;
};

/// One Transformer layer: self-attention, encoder attention (`cross_attention`: the decoder of
/// an encoder-decoder), feed-forward; each sublayer wrapped by Residual (post- or pre-norm).
/// Parameter names are those of the PyTorch reference (self_attn, self_attn_layer_norm,
/// encoder_attn, encoder_attn_layer_norm, fc1, fc2, final_layer_norm).
class TransformerLayer : public Module {
 public:
  TransformerLayer(const TransformerConfig& c, bool cross_attention,
                   const AttentionConfig& self_attention, uint64_t seed, const std::string& path);
  /// x [B, T, D] -> [B, T, D]. With `cache` (inference, no tape) self-attention writes this
  /// step's keys/values into it and attends over it, and encoder attention reads the
  /// encoder's keys/values from it.
  ag::Variable forward(const ag::Variable& x, const LayerInputs& in, double dropout,
                       uint64_t stream, const LayerCache* cache = nullptr) const;
  bool has_cross_attention() const { return encoder_attn != nullptr; }

  MultiHeadAttention self_attn;
  LayerNorm self_attn_layer_norm;
  std::unique_ptr<MultiHeadAttention> encoder_attn;
  std::unique_ptr<LayerNorm> encoder_attn_layer_norm;
  FeedForward ffn;
  LayerNorm final_layer_norm;
  bool pre_norm;
};

/// Incremental-decoding cache of one layer, preallocated (see KvCache): self-attention
/// keys/values [slots, H, capacity, Dh] and encoder-attention keys/values
/// [memory_slots, H, source_capacity, Dh] (empty for layers without encoder attention).
struct LayerKv {
  Tensor self_k, self_v, memory_k, memory_v;
};

/// The key/value cache of a decoding session: one LayerKv per layer. A sequence being decoded
/// owns a self-attention slot (its positions so far), a source sentence an encoder slot.
/// reserve() grows it (doubling, contents kept); nothing is copied while decoding within the
/// reserved size.
class KvCache {
 public:
  /// Keys/values in `dtype` on `device` (the model's compute dtype and device).
  KvCache(int64_t layers, int64_t heads, int64_t head_dim, DType dtype = DType::kF32,
          Device device = Device::cpu());
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
  DType dtype_;
  Device device_;
  int64_t slots_ = 0, positions_ = 0, memory_slots_ = 0, source_positions_ = 0;
};

/// The rows of one decoding step (all i32 [n], on the model's device): row i feeds token tokens[i] at position
/// positions[i], continuing self-attention slot self_slots[i] (and, for a stack with encoder
/// attention, over encoder slot memory_slots[i] whose source has source_lengths[i] tokens).
/// Rows may sit at different positions (requests join a running batch).
struct DecodeRows {
  Tensor tokens, positions, self_slots, memory_slots, source_lengths;
  /// 1 + the largest of `positions`: the caller's bookkeeping knows it, so the step reads
  /// nothing back from the device (it sizes the sinusoid table and checks max_positions).
  int64_t span = 0;
};

/// A stack of layers with its embeddings, named under `name` ("encoder" or "decoder"): token
/// embedding (its own, or the model's shared table), positions (learned table, or the
/// sinusoidal one the model passes in), N TransformerLayers, and the final layer norm of a
/// pre-norm stack. `causal` masks future positions; `cross_attention` adds encoder attention.
class Stack : public Module {
 public:
  struct Options {
    int64_t layers = 1;
    int64_t vocab = 0;
    bool causal = false;
    bool cross_attention = false;
    AttentionConfig attention;      // self-attention kind
    uint64_t embed_site = 0;        // dropout stream of the embeddings
    uint64_t first_layer_site = 0;  // layer i's dropout streams derive from first_layer_site + i
  };
  /// `shared` (may be null: the stack owns name.embed_tokens) is the token table;
  /// `sinusoid` the model's sinusoidal table (undefined for learned positions).
  Stack(const TransformerConfig& c, const Options& o, const Embedding* shared,
        ag::Variable sinusoid, uint64_t seed, const std::string& name);

  /// ids i32 [B, T] (right-padded), lengths i32 [B] -> hidden [B, T, D]. memory (and
  /// memory_lengths) feed encoder attention; undefined for a stack without it.
  ag::Variable forward(const Tensor& ids, const Tensor& lengths, const ag::Variable& memory,
                       const Tensor& memory_lengths, double dropout, uint64_t stream) const;
  /// One decoding step for the rows -> hidden [n, D], through the same layers with the
  /// cache (each row's keys/values are written into its slot). Equal to forward() over the
  /// row's whole prefix, last position.
  Tensor step(const DecodeRows& rows, KvCache& cache) const;
  /// Reads whole prefixes in one pass (a causal stack without encoder attention: a language
  /// model's prompts): ids i32 [B, T] (right-padded), lengths i32 [B] (1..T: the caller's
  /// bookkeeping, not read back here), slots i32 [B] ->
  /// hidden [B, T, D]. Row b's keys/values of positions 0..T-1 are written into slot slots[b]
  /// (those past lengths[b] are padding, overwritten by later steps); the next step() of that
  /// slot continues at position lengths[b]. Equal to forward() over the same ids.
  Tensor prefill(const Tensor& ids, const Tensor& lengths, const Tensor& slots,
                 KvCache& cache) const;
  /// Writes the encoder-attention keys/values of `memory` [B, S, D] into encoder slots
  /// `slots` (i32 [B]) of every layer (inference only, no tape).
  void write_memory(const Tensor& memory, const Tensor& slots, KvCache& cache) const;
  KvCache make_cache() const;

  const Embedding& tokens() const { return shared_ ? *shared_ : *own_tokens_; }
  int64_t num_layers() const { return static_cast<int64_t>(layers_.size()); }
  const TransformerLayer& layer(int64_t i) const { return *layers_[static_cast<size_t>(i)]; }

 private:
  /// Positions 0..T-1 of every row, i32 [B, T]; T past a learned table is an error.
  Tensor positions(const Tensor& ids) const;
  /// sqrt(D) E[ids] + P[positions] (E[ids] unscaled without model.scale_embeddings; then layer
  /// norm with model.embed_norm), then dropout; positions i32 like ids, every position below
  /// `span`.
  ag::Variable embed(const Tensor& ids, const Tensor& positions, int64_t span, double dropout,
                     uint64_t stream) const;
  /// The layers (and final norm) over embedded x.
  ag::Variable run(ag::Variable x, const LayerInputs& in, double dropout, uint64_t stream,
                   const std::vector<LayerCache>* caches) const;
  /// The sinusoidal table for n positions: the model's (built at construction) when it is
  /// long enough, else a longer one built for this call (nothing is mutated, so threads may
  /// share the model).
  ag::Variable sinusoid_table(int64_t n) const;
  /// Relative positions: the self-attention score bias [H, Tq + Tk - 1] of queries at
  /// positions 0..Tq-1 over keys 0..Tk-1 (ops::attention's layout, query_offset 0).
  ag::Variable relative_bias(int64_t Tq, int64_t Tk) const;
  /// Relative positions, decoding: [n, H, Tk], row b's query at positions[b] (i32 [n], CPU)
  /// over keys 0..Tk-1.
  Tensor relative_bias_rows(const Tensor& positions, int64_t Tk) const;

  Options o_;
  int64_t d_model_, heads_, head_dim_, max_positions_;
  bool learned_positions_, halves_, scale_embeddings_;
  int64_t relative_buckets_, relative_max_distance_;
  const Embedding* shared_;
  std::unique_ptr<Embedding> own_tokens_, positions_;
  std::unique_ptr<Embedding> relative_;  // relative positions: [buckets, H]
  ag::Variable sinusoid_;
  std::vector<std::unique_ptr<TransformerLayer>> layers_;
  std::unique_ptr<LayerNorm> embed_norm_;  // model.embed_norm only
  std::unique_ptr<LayerNorm> final_norm_;  // pre-norm only
};

}  // namespace attend::nn
