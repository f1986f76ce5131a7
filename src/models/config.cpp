// Model keys (see config.h). Keep configs/README.md in step with this list.
#include "models/config.h"

namespace attend::models {

std::vector<io::KeySpec> model_keys() {
  using io::KeyType;
  return {
      {"model.arch", KeyType::kString, "", "encoder_decoder (translation; the default, or the preset's), decoder_only (GPT-style language model) or encoder_only (BERT-style masked-LM model)"},
      {"model.preset", KeyType::kString, "small", "starting point: tiny, small, base or big (base/big are the paper's); gpt-tiny or gpt2-small (decoder-only: pre-norm, GELU, learned positions, tied embeddings)"},
      {"model.d_model", KeyType::kInt, "", "model width (default: from the preset)"},
      {"model.ffn", KeyType::kInt, "", "feed-forward inner width"},
      {"model.heads", KeyType::kInt, "", "attention heads (d_model must be divisible by it unless model.head_dim is set)"},
      {"model.encoder_layers", KeyType::kInt, "", "encoder layers"},
      {"model.decoder_layers", KeyType::kInt, "", "decoder layers"},
      {"model.dropout", KeyType::kFloat, "", "residual and embedding dropout probability"},
      {"model.activation", KeyType::kString, "", "feed-forward activation: relu (paper), gelu (exact, erf), gelu_tanh (its tanh approximation: GPT-2) or silu (x sigmoid(x): Marian's swish)"},
      {"model.norm", KeyType::kString, "", "post (paper: LN after the residual add) or pre"},
      {"model.positions", KeyType::kString, "", "sinusoidal (paper: sin and cos interleaved), sinusoidal_halves (the same with the sines in the first half of the columns, the cosines in the second: Marian), learned, or relative (T5: a learned self-attention score bias per bucket of relative position)"},
      {"model.relative_buckets", KeyType::kInt, "", "relative positions: buckets of the score bias (default 32)"},
      {"model.relative_max_distance", KeyType::kInt, "", "relative positions: the distance from which all positions share the last bucket (default 128)"},
      {"model.max_positions", KeyType::kInt, "", "longest sequence for learned positions"},
      {"model.share_embeddings", KeyType::kBool, "", "one table for source, target and output (joint vocabulary)"},
      {"model.source_eos", KeyType::kBool, "", "end each source sentence with the end-of-sentence token (default false)"},
      {"model.scale_embeddings", KeyType::kBool, "", "multiply token embeddings by sqrt(d_model) (the paper; default true; false for BERT)"},
      {"model.embed_norm", KeyType::kBool, "", "layer norm over the summed token and position embeddings (BERT; default false)"},
      {"model.norm_eps", KeyType::kFloat, "", "epsilon of every layer norm (default 1e-5; BERT 1e-12)"},
      {"model.norm_type", KeyType::kString, "", "layer (layer norm; the default) or rms (RMSNorm: no centring, no bias; T5)"},
      {"model.linear_bias", KeyType::kBool, "", "biases on the attention and feed-forward linears (default true; false for T5)"},
      {"model.gated_ffn", KeyType::kBool, "", "gated feed-forward fc2(act(fc1 x) * fc_up x) (T5 v1.1; default false)"},
      {"model.head_dim", KeyType::kInt, "", "attention head width (default 0: d_model / heads)"},
      {"model.scale_attention", KeyType::kBool, "", "scale attention scores by 1/sqrt(head width) (default true; false for T5)"},
      {"model.output_scale", KeyType::kFloat, "", "factor on the final hidden states before the output projection (default 1; T5 with tied embeddings d_model^-0.5)"},
      {"model.logits_bias", KeyType::kBool, "", "a learned bias added to the output logits (BERT's masked-LM decoder bias; default false)"},
      {"model.mlm_head", KeyType::kBool, "", "encoder-only: BERT's masked-LM transform (dense, activation, layer norm) before the output projection (default false)"},
      {"model.qkv_init_gain", KeyType::kFloat, "", "Xavier gain of the attention q/k/v projections at initialisation (default 1)"},
      {"model.attention", KeyType::kString, "", "encoder self-attention: full or local"},
      {"model.window", KeyType::kInt, "", "local attention: keys visible on each side"},
      {"model.global_tokens", KeyType::kInt, "", "local attention: leading positions that see and are seen by all"},
  };
}

io::Config model_keys_of(const nlohmann::json& all, const std::string& file) {
  nlohmann::json model = nlohmann::json::object();
  for (const auto& [key, value] : all.items())
    if (key.rfind("model.", 0) == 0) model[key] = value;
  io::Config c(model_keys());
  c.load_json(model.dump(), file);
  return c;
}

nn::TransformerConfig model_config(const io::Config& c, int64_t vocab,
                                   const data::Tokenizer* tokenizer) {
  nn::TransformerConfig m = nn::TransformerConfig::preset(c.get_string("model.preset"));
  auto i = [&](const char* k, int64_t& v) { if (c.is_set(k)) v = c.get_int(k); };
  if (c.is_set("model.arch")) m.arch = nn::parse_arch(c.get_string("model.arch"));
  i("model.d_model", m.d_model);
  i("model.ffn", m.ffn);
  i("model.heads", m.heads);
  i("model.encoder_layers", m.encoder_layers);
  i("model.decoder_layers", m.decoder_layers);
  if (c.is_set("model.dropout")) m.dropout = c.get_float("model.dropout");
  if (c.is_set("model.activation")) m.activation = nn::parse_activation(c.get_string("model.activation"));
  if (c.is_set("model.norm")) m.norm = nn::parse_norm(c.get_string("model.norm"));
  if (c.is_set("model.positions")) m.positions = nn::parse_positions(c.get_string("model.positions"));
  i("model.max_positions", m.max_positions);
  if (c.is_set("model.share_embeddings")) m.share_embeddings = c.get_bool("model.share_embeddings");
  if (c.is_set("model.source_eos")) m.source_eos = c.get_bool("model.source_eos");
  if (c.is_set("model.scale_embeddings")) m.scale_embeddings = c.get_bool("model.scale_embeddings");
  if (c.is_set("model.embed_norm")) m.embed_norm = c.get_bool("model.embed_norm");
  if (c.is_set("model.norm_eps")) m.norm_eps = c.get_float("model.norm_eps");
  if (c.is_set("model.logits_bias")) m.logits_bias = c.get_bool("model.logits_bias");
  if (c.is_set("model.mlm_head")) m.mlm_head = c.get_bool("model.mlm_head");
  if (c.is_set("model.qkv_init_gain")) m.qkv_init_gain = c.get_float("model.qkv_init_gain");
  if (c.is_set("model.norm_type")) m.norm_type = nn::parse_norm_type(c.get_string("model.norm_type"));
  if (c.is_set("model.linear_bias")) m.linear_bias = c.get_bool("model.linear_bias");
  if (c.is_set("model.gated_ffn")) m.gated_ffn = c.get_bool("model.gated_ffn");
  i("model.head_dim", m.head_dim);
  if (c.is_set("model.scale_attention")) m.scale_attention = c.get_bool("model.scale_attention");
  i("model.relative_buckets", m.relative_buckets);
  i("model.relative_max_distance", m.relative_max_distance);
  if (c.is_set("model.output_scale")) m.output_scale = c.get_float("model.output_scale");
  if (c.is_set("model.attention"))
    m.attention.kind = nn::parse_attention_kind(c.get_string("model.attention"));
  i("model.window", m.attention.window);
  i("model.global_tokens", m.attention.global_tokens);
  m.src_vocab = m.tgt_vocab = tokenizer ? tokenizer->vocab_size() : vocab;
  if (tokenizer) {
    m.pad_id = tokenizer->pad_id();
    m.unk_id = tokenizer->unk_id();
    m.bos_id = tokenizer->bos_id();
    m.eos_id = tokenizer->eos_id();
  }
  return m;
}

}  // namespace attend::models
