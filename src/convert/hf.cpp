// HuggingFace checkpoints (see hf.h).
#include "convert/hf.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include "core/error.h"
#include "data/byte_bpe.h"
#include "data/marian_vocab.h"
#include "data/t5_vocab.h"
#include "data/wordpiece.h"
#include "io/file.h"
#include "io/json.h"
#include "io/safetensors.h"
#include "models/model_dir.h"
#include "nn/transformer.h"
#include "ops/ops.h"

namespace attend::convert {
namespace fs = std::filesystem;
namespace {

std::string path(const std::string& dir, const std::string& f) {
  return (fs::path(dir) / f).string();
}

// config.json's values, each error naming the file and key.
struct HfConfig {
  nlohmann::json j;
  std::string file;

  bool has(const char* key) const { return j.contains(key) && !j[key].is_null(); }
  int64_t integer(const char* key) const {
    ATTEND_CHECK(has(key) && j[key].is_number_integer() && j[key].get<int64_t>() > 0,
                 "{}: \"{}\" must be a positive integer, got {}", file, key,
                 has(key) ? j[key].dump() : "nothing");
    return j[key].get<int64_t>();
  }
  int64_t id(const char* key) const {
    ATTEND_CHECK(has(key) && j[key].is_number_integer() && j[key].get<int64_t>() >= 0,
                 "{}: \"{}\" must be a token id (an integer >= 0), got {}", file, key,
                 has(key) ? j[key].dump() : "nothing");
    return j[key].get<int64_t>();
  }
  double number(const char* key, double fallback) const {
    if (!has(key)) return fallback;
    ATTEND_CHECK(j[key].is_number(), "{}: \"{}\" must be a number, got {}", file, key,
                 j[key].dump());
    return j[key].get<double>();
  }
  std::string string(const char* key, const std::string& fallback) const {
    if (!has(key)) return fallback;
    ATTEND_CHECK(j[key].is_string(), "{}: \"{}\" must be a string, got {}", file, key,
                 j[key].dump());
    return j[key].get<std::string>();
  }
  bool flag(const char* key, bool fallback) const {
    if (!has(key)) return fallback;
    ATTEND_CHECK(j[key].is_boolean(), "{}: \"{}\" must be true or false, got {}", file, key,
                 j[key].dump());
    return j[key].get<bool>();
  }
  // An option attend does not implement: anything but `supported` is an error naming it.
  void require(const char* key, const std::string& supported, const std::string& fallback) const {
    const std::string v = string(key, fallback);
    ATTEND_CHECK(v == supported, "{}: \"{}\": \"{}\" is not supported (attend implements \"{}\")",
                 file, key, v, supported);
  }
};

// attend's model.activation for transformers' activation name config.json's `key` gives (default
// `fallback`); any other is an error naming the key.
std::string activation(const HfConfig& c, const char* key, const std::string& fallback) {
  const std::string act = c.string(key, fallback);
  if (act == "gelu_new" || act == "gelu_pytorch_tanh") return "gelu_tanh";
  if (act == "swish" || act == "silu") return "silu";
  ATTEND_CHECK(act == "gelu" || act == "relu",
               "{}: \"{}\": \"{}\" is not supported (attend implements gelu, gelu_new, "
               "gelu_pytorch_tanh, swish, silu and relu)",
               c.file, key, act);
  return act;
}

// The safetensors files of a checkpoint: model.safetensors, or the shards its index lists.
// `auto_class`: the transformers class that rewrites a pickled checkpoint of the family whole.
std::vector<std::string> weight_files(const std::string& dir, const char* auto_class) {
  if (io::file_exists(path(dir, "model.safetensors"))) return {path(dir, "model.safetensors")};
  const std::string index = path(dir, "model.safetensors.index.json");
  if (io::file_exists(index)) {
    const nlohmann::json j = io::read_json_object(index);
    ATTEND_CHECK(j.contains("weight_map") && j["weight_map"].is_object(),
                 "{}: \"weight_map\" must be an object", index);
    std::set<std::string> files;
    for (const auto& [name, file] : j["weight_map"].items()) {
      ATTEND_CHECK(file.is_string() && file.get<std::string>().find('/') == std::string::npos,
                   "{}: weight_map[\"{}\"] must name a file of the directory, got {}", index, name,
                   file.dump());
      files.insert(path(dir, file.get<std::string>()));
    }
    ATTEND_CHECK(!files.empty(), "{}: \"weight_map\" lists no tensors", index);
    return {files.begin(), files.end()};
  }
  for (const char* pickle : {"pytorch_model.bin", "pytorch_model.bin.index.json"})
    ATTEND_CHECK(!io::file_exists(path(dir, pickle)),
                 "{}: holds {} but no model.safetensors. attend reads safetensors only: a .bin "
                 "checkpoint is a pickle, and loading one runs code. Rewrite it once where you "
                 "trust it: python -c \"from transformers import {}; "
                 "{}.from_pretrained('{}').save_pretrained('OUT', "
                 "safe_serialization=True)\"",
                 dir, pickle, auto_class, auto_class, dir);
  ATTEND_FAIL("{}: no model.safetensors (nor model.safetensors.index.json)", dir);
}

std::string shape_str(const Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

using Weights = std::vector<std::pair<std::string, Tensor>>;

// The tensors of a checkpoint, f32, each file read once, on their way into `out` (attend's
// names). A tensor under `prefix` (the base model's, "bert." in BertFor*) goes by its name
// without it, any other (a head beside the base model) by its full name; `keep` sees those names
// and picks the tensors read. `sizes` names config.json's sizes in the error of a tensor whose
// shape disagrees with them.
class HfTensors {
 public:
  HfTensors(const std::vector<std::string>& files, const std::string& prefix,
            const io::TensorFilter& keep, std::string sizes, Weights& out)
      : sizes_(std::move(sizes)), out_(out) {
    const auto local = [&](const std::string& name) {
      return name.rfind(prefix, 0) == 0 ? name.substr(prefix.size()) : name;
    };
    for (const auto& file : files) {
      io::SafeTensors st =
          io::load_safetensors(file, [&](const std::string& name) { return keep(local(name)); });
      for (auto& [name, t] : st.tensors) {
        ATTEND_CHECK(
            t.dtype() == DType::kF32 || t.dtype() == DType::kF16 || t.dtype() == DType::kBF16,
            "{}: tensor '{}' is {}; expected F32, F16 or BF16 weights", file, name, t.str());
        const bool fresh =
            tensors_
                .emplace(local(name),
                         Entry{t.dtype() == DType::kF32 ? t : t.to(DType::kF32), file, name})
                .second;
        ATTEND_CHECK(fresh, "{}: tensor '{}' is in the checkpoint twice", file, local(name));
      }
    }
  }
  // The tensor `name`, which must have `shape` (what config.json's sizes give).
  Tensor take(const std::string& name, const Shape& shape) {
    const auto it = tensors_.find(name);
    ATTEND_CHECK(it != tensors_.end(), "the checkpoint has no tensor '{}'", name);
    ATTEND_CHECK(it->second.tensor.shape() == shape,
                 "{}: tensor '{}' is {} but config.json ({}) gives {}", it->second.file,
                 it->second.full_name, shape_str(it->second.tensor.shape()), sizes_,
                 shape_str(shape));
    Tensor t = it->second.tensor;
    tensors_.erase(it);
    return t;
  }
  // take(from) into the weights as `to`.
  void move(const std::string& from, const std::string& to, const Shape& shape) {
    out_.emplace_back(to, take(from, shape));
  }
  // A linear layer's weight [rows, cols] and bias [rows].
  void move_linear(const std::string& from, const std::string& to, int64_t rows, int64_t cols) {
    move(from + ".weight", to + ".weight", {rows, cols});
    move(from + ".bias", to + ".bias", {rows});
  }
  // A layer norm's weight and bias [dim] (named gamma and beta in older checkpoints).
  void move_norm(const std::string& from, const std::string& to, int64_t dim) {
    const bool old = has(from + ".gamma");
    move(from + (old ? ".gamma" : ".weight"), to + ".weight", {dim});
    move(from + (old ? ".beta" : ".bias"), to + ".bias", {dim});
  }
  bool has(const std::string& name) const { return tensors_.count(name) != 0; }
  // What was not taken (full names, as the checkpoint spells them).
  std::vector<std::string> left() const {
    std::vector<std::string> out;
    for (const auto& [name, e] : tensors_) out.push_back(e.full_name);
    return out;
  }

 private:
  struct Entry {
    Tensor tensor;
    std::string file, full_name;
  };
  std::map<std::string, Entry> tensors_;
  std::string sizes_;
  Weights& out_;
};

// The prefix under which a checkpoint stores the base model's tensors ("bert." in BertFor*).
std::string base_prefix(const std::vector<std::string>& files, const std::string& probe,
                        const std::string& model_type) {
  for (const auto& file : files) {
    const std::vector<std::string> names = io::safetensors_names(file);
    if (std::find(names.begin(), names.end(), probe) != names.end()) return "";
    if (std::find(names.begin(), names.end(), model_type + "." + probe) != names.end())
      return model_type + ".";
  }
  ATTEND_FAIL("{}: no tensor '{}' (nor '{}.{}'): not a {} checkpoint", files.front(), probe,
              model_type, probe, model_type);
}

// The tokens of a vocabulary object {token: id} in id order; ids must be 0..n-1, each once.
std::vector<std::string> tokens_by_id(const nlohmann::json& vocab, const std::string& where) {
  ATTEND_CHECK(vocab.is_object() && !vocab.empty(), "{}: the vocabulary must be a non-empty object",
               where);
  std::vector<std::string> tokens(vocab.size());
  std::vector<bool> seen(vocab.size());
  for (const auto& [token, id] : vocab.items()) {
    ATTEND_CHECK(
        id.is_number_unsigned() && id.get<size_t>() < tokens.size() && !seen[id.get<size_t>()],
        "{}: \"{}\": ids must be 0..{} once each, got {}", where, token, tokens.size() - 1,
        id.dump());
    seen[id.get<size_t>()] = true;
    tokens[id.get<size_t>()] = token;
  }
  return tokens;
}

// `tok`, which must have config.json's "vocab_size" V tokens (an error naming both otherwise).
data::Tokenizer sized(data::Tokenizer tok, int64_t V, const HfConfig& c, const std::string& dir) {
  ATTEND_CHECK(tok.vocab_size() == V,
               "{}: the tokenizer has {} tokens but {}'s \"vocab_size\" is {}", dir,
               tok.vocab_size(), c.file, V);
  return tok;
}

// The model.* keys every import writes, and the record of where the model came from.
struct Layout {
  std::string arch, activation, norm;
  int64_t d_model, ffn, heads, layers, positions;
  double dropout, eps;
  bool embed_norm;
};
void write_keys(const Layout& l, const std::string& model_type, const std::string& dir,
                nlohmann::ordered_json& m) {
  const auto s = [](auto v) { return std::to_string(v); };
  m["model.arch"] = l.arch;
  m["model.d_model"] = s(l.d_model);
  m["model.ffn"] = s(l.ffn);
  m["model.heads"] = s(l.heads);
  m[l.arch == "decoder_only" ? "model.decoder_layers" : "model.encoder_layers"] = s(l.layers);
  m["model.dropout"] = format("{}", l.dropout);
  m["model.activation"] = l.activation;
  m["model.norm"] = l.norm;
  m["model.positions"] = "learned";
  m["model.max_positions"] = s(l.positions);
  m["model.share_embeddings"] = "true";
  m["model.scale_embeddings"] = "false";
  m["model.embed_norm"] = l.embed_norm ? "true" : "false";
  m["model.norm_eps"] = format("{}", l.eps);
  m["converted_from"] = {{"format", "huggingface"},
                         {"model_type", model_type},
                         {"directory", fs::absolute(dir).string()}};
}

// The WordPiece tokenizer of a BERT checkpoint: vocab.txt (or tokenizer.json's vocabulary) and
// the normalizer options of tokenizer.json (else tokenizer_config.json).
data::Tokenizer bert_tokenizer(const std::string& dir) {
  data::WordPieceOptions o;
  const std::string fast = path(dir, "tokenizer.json"), slow = path(dir, "tokenizer_config.json");
  std::string vocab_text;
  if (io::file_exists(fast)) {
    const nlohmann::json t = io::read_json_object(fast);
    const HfConfig n{t.value("normalizer", nlohmann::json::object()), fast + ": normalizer"};
    n.require("type", "BertNormalizer", "");
    o.clean_text = n.flag("clean_text", true);
    o.chinese_chars = n.flag("handle_chinese_chars", true);
    o.lowercase = n.flag("lowercase", true);
    o.strip_accents = n.flag("strip_accents", o.lowercase);
    const HfConfig pre{t.value("pre_tokenizer", nlohmann::json::object()),
                       fast + ": pre_tokenizer"};
    pre.require("type", "BertPreTokenizer", "");
    const HfConfig m{t.value("model", nlohmann::json::object()), fast + ": model"};
    m.require("type", "WordPiece", "");
    m.require("continuing_subword_prefix", "##", "##");
    ATTEND_CHECK(m.number("max_input_chars_per_word", 100) == 100,
                 "{}: model: \"max_input_chars_per_word\" must be 100 (what attend implements)",
                 fast);
    if (!io::file_exists(path(dir, "vocab.txt"))) {
      const std::vector<std::string> tokens =
          tokens_by_id(m.j.value("vocab", nlohmann::json()), fast + ": model.vocab");
      for (const auto& token : tokens) vocab_text += token + "\n";
    }
  } else if (io::file_exists(slow)) {
    const HfConfig c{io::read_json_object(slow), slow};
    o.lowercase = c.flag("do_lower_case", true);
    o.strip_accents = c.flag("strip_accents", o.lowercase);
    o.chinese_chars = c.flag("tokenize_chinese_chars", true);
  }
  const std::string vocab = path(dir, "vocab.txt");
  if (vocab_text.empty()) {
    ATTEND_CHECK(io::file_exists(vocab), "{}: no vocab.txt (nor a tokenizer.json vocabulary)", dir);
    vocab_text = io::read_file(vocab);
    if (!vocab_text.empty() && vocab_text.back() == '\n') vocab_text.pop_back();
  } else {
    vocab_text.pop_back();
  }
  return data::Tokenizer::from_wordpiece(data::WordPiece(vocab_text, o, vocab));
}

// Where a BERT-family checkpoint keeps its sizes and tensors: BERT's names, or DistilBERT's
// (no token types, "transformer.layer.N", q_lin/k_lin/v_lin/out_lin, ffn.lin1/lin2, its
// masked-LM head as vocab_transform, vocab_layer_norm and vocab_projector). Both keep the word
// and position tables and their layer norm under "embeddings." with the same names.
struct BertLayout {
  const char* model_type;  // also the prefix of the encoder in heads' checkpoints ("bert.")
  const char *hidden, *ffn, *heads, *layers, *act, *eps, *dropout;  // config.json's keys
  const char *token_type, *layer;  // token_type: null when there are none
  const char *q, *k, *v, *o, *attn_norm, *fc1, *fc2, *out_norm;
  const char *head_dense, *head_norm, *head_bias;  // the masked-LM head (its decoder is tied)
};
constexpr BertLayout kBert{
    .model_type = "bert", .hidden = "hidden_size", .ffn = "intermediate_size",
    .heads = "num_attention_heads", .layers = "num_hidden_layers", .act = "hidden_act",
    .eps = "layer_norm_eps", .dropout = "hidden_dropout_prob",
    .token_type = "embeddings.token_type_embeddings", .layer = "encoder.layer.",
    .q = ".attention.self.query", .k = ".attention.self.key", .v = ".attention.self.value",
    .o = ".attention.output.dense", .attn_norm = ".attention.output.LayerNorm",
    .fc1 = ".intermediate.dense", .fc2 = ".output.dense", .out_norm = ".output.LayerNorm",
    .head_dense = "cls.predictions.transform.dense",
    .head_norm = "cls.predictions.transform.LayerNorm", .head_bias = "cls.predictions.bias"};
constexpr BertLayout kDistilBert{
    .model_type = "distilbert", .hidden = "dim", .ffn = "hidden_dim", .heads = "n_heads",
    .layers = "n_layers", .act = "activation", .eps = nullptr, .dropout = "dropout",
    .token_type = nullptr, .layer = "transformer.layer.", .q = ".attention.q_lin",
    .k = ".attention.k_lin", .v = ".attention.v_lin", .o = ".attention.out_lin",
    .attn_norm = ".sa_layer_norm", .fc1 = ".ffn.lin1", .fc2 = ".ffn.lin2",
    .out_norm = ".output_layer_norm", .head_dense = "vocab_transform",
    .head_norm = "vocab_layer_norm", .head_bias = "vocab_projector.bias"};

HfImport import_bert(const std::string& dir, const HfConfig& c, const BertLayout& n) {
  const std::string act = activation(c, n.act, "gelu");
  c.require("position_embedding_type", "absolute", "absolute");
  ATTEND_CHECK(!c.flag("is_decoder", false) && !c.flag("add_cross_attention", false),
               "{}: \"is_decoder\" / \"add_cross_attention\": a BERT decoder is not supported",
               c.file);
  const int64_t D = c.integer(n.hidden), F = c.integer(n.ffn), H = c.integer(n.heads),
                L = c.integer(n.layers), V = c.integer("vocab_size"),
                P = c.integer("max_position_embeddings");
  const int64_t types = !n.token_type ? 0 : c.has("type_vocab_size") ? c.integer("type_vocab_size")
                                                                      : 2;
  ATTEND_CHECK(D % H == 0, "{}: \"{}\" {} is not divisible by \"{}\" {}", c.file, n.hidden, D,
               n.heads, H);
  // DistilBERT's layer norms are fixed at 1e-12.
  const double eps = n.eps ? c.number(n.eps, 1e-12) : 1e-12;
  ATTEND_CHECK(eps > 0, "{}: \"{}\" must be > 0", c.file, n.eps ? n.eps : "");

  HfImport out;
  out.model_type = n.model_type;
  out.tokenizer = sized(bert_tokenizer(dir), V, c, dir);

  const auto files = weight_files(dir, "AutoModel");
  const std::string word = "embeddings.word_embeddings.weight";
  const std::string prefix = base_prefix(files, word, n.model_type);
  const std::string head_dense = n.head_dense, head_norm = n.head_norm, head_bias = n.head_bias;
  // The encoder's tensors and the masked-LM head of *ForMaskedLM / BertForPreTraining (its
  // decoder is the tied token table); the pooler, the next-sentence head and the buffers
  // (position_ids, token_type_ids) are left out.
  HfTensors hf(
      files, prefix,
      [&](const std::string& name) {
        const bool head =
            name.rfind(head_dense, 0) == 0 || name.rfind(head_norm, 0) == 0 || name == head_bias;
        return (name.rfind("embeddings.", 0) == 0 && !name.ends_with("_ids")) ||
               name.rfind(n.layer, 0) == 0 || head;
      },
      format("{} {}, {} {}, vocab_size {}, max_position_embeddings {}", n.hidden, D, n.ffn, F, V,
             P),
      out.weights);
  hf.move(word, "embed_tokens.weight", {V, D});
  std::vector<float> p =
      hf.take("embeddings.position_embeddings.weight", {P, D}).to_vector<float>();
  if (n.token_type) {  // token type 0 (every token of a single text) folded into the positions
    const std::vector<float> type0 =
        hf.take(std::string(n.token_type) + ".weight", {types, D}).to_vector<float>();
    for (size_t i = 0; i < p.size(); ++i) p[i] += type0[i % static_cast<size_t>(D)];
  }
  out.weights.emplace_back("encoder.embed_positions.weight", Tensor::from_vector(p, {P, D}));
  hf.move_norm("embeddings.LayerNorm", "encoder.embed_layer_norm", D);
  for (int64_t l = 0; l < L; ++l) {
    const std::string from = n.layer + std::to_string(l),
                      to = "encoder.layers." + std::to_string(l);
    hf.move_linear(from + n.q, to + ".self_attn.q_proj", D, D);
    hf.move_linear(from + n.k, to + ".self_attn.k_proj", D, D);
    hf.move_linear(from + n.v, to + ".self_attn.v_proj", D, D);
    hf.move_linear(from + n.o, to + ".self_attn.out_proj", D, D);
    hf.move_norm(from + n.attn_norm, to + ".self_attn_layer_norm", D);
    hf.move_linear(from + n.fc1, to + ".fc1", F, D);
    hf.move_linear(from + n.fc2, to + ".fc2", D, F);
    hf.move_norm(from + n.out_norm, to + ".final_layer_norm", D);
  }
  const bool mlm_head = hf.has(head_bias);
  if (mlm_head) {
    hf.move_linear(head_dense, "lm_head_dense", D, D);
    hf.move_norm(head_norm, "lm_head_layer_norm", D);
    hf.move(head_bias, "output_bias", {V});
  }
  const auto left = hf.left();
  ATTEND_CHECK(left.empty(),
               "{}: tensor '{}' is not part of a {}-layer {} encoder or its masked-LM head", dir,
               left.empty() ? "" : left.front(), L, n.model_type);

  write_keys({"encoder_only", act, "post", D, F, H, L, P, c.number(n.dropout, 0.1), eps, true},
             n.model_type, dir, out.config);
  out.config["model.mlm_head"] = mlm_head ? "true" : "false";
  out.config["model.logits_bias"] = mlm_head ? "true" : "false";
  out.config["converted_from"]["mlm_head"] = mlm_head;
  return out;
}

// The byte-level BPE tokenizer of a GPT-2 checkpoint: tokenizer.json, else vocab.json and
// merges.txt.
data::Tokenizer gpt2_tokenizer(const std::string& dir) {
  std::vector<std::string> tokens, merges;
  std::vector<int32_t> specials;

  const std::string fast = path(dir, "tokenizer.json");
  if (io::file_exists(fast)) {
    const nlohmann::json t = io::read_json_object(fast);
    ATTEND_CHECK(!t.contains("normalizer") || t["normalizer"].is_null(),
                 "{}: \"normalizer\" is not supported for byte-level BPE (attend implements none)",
                 fast);
    const HfConfig pre{t.value("pre_tokenizer", nlohmann::json::object()),
                       fast + ": pre_tokenizer"};
    pre.require("type", "ByteLevel", "");
    ATTEND_CHECK(!pre.flag("add_prefix_space", false) && pre.flag("use_regex", true),
                 "{}: pre_tokenizer: only add_prefix_space false and use_regex true are "
                 "supported (GPT-2's)",
                 fast);
    const HfConfig m{t.value("model", nlohmann::json::object()), fast + ": model"};
    m.require("type", "BPE", "");
    ATTEND_CHECK(m.string("continuing_subword_prefix", "").empty() &&
                     m.string("end_of_word_suffix", "").empty() &&
                     !m.flag("byte_fallback", false) && !m.has("dropout"),
                 "{}: model: continuing_subword_prefix, end_of_word_suffix, byte_fallback and "
                 "dropout are not supported",
                 fast);
    tokens = tokens_by_id(m.j.value("vocab", nlohmann::json()), fast + ": model.vocab");
    ATTEND_CHECK(m.j.contains("merges") && m.j["merges"].is_array(),
                 "{}: model: \"merges\" must be a list", fast);
    for (const auto& merge : m.j["merges"]) {
      if (merge.is_string()) {
        merges.push_back(merge.get<std::string>());
      } else {
        ATTEND_CHECK(
            merge.is_array() && merge.size() == 2 && merge[0].is_string() && merge[1].is_string(),
            "{}: model.merges: expected \"a b\" or [\"a\", \"b\"], got {}", fast, merge.dump());
        merges.push_back(merge[0].get<std::string>() + " " + merge[1].get<std::string>());
      }
    }
    for (const auto& added : t.value("added_tokens", nlohmann::json::array())) {
      if (!added.value("special", false)) continue;
      ATTEND_CHECK(added.contains("id") && added["id"].is_number_unsigned(),
                   "{}: added_tokens: an entry without an id", fast);
      specials.push_back(added["id"].get<int32_t>());
    }
  } else {
    const std::string vocab = path(dir, "vocab.json"), merges_file = path(dir, "merges.txt");
    ATTEND_CHECK(io::file_exists(vocab) && io::file_exists(merges_file),
                 "{}: no tokenizer.json, nor vocab.json and merges.txt", dir);
    tokens = tokens_by_id(io::read_json_object(vocab), vocab);
    std::istringstream in(io::read_file(merges_file));
    for (std::string line; std::getline(in, line);)
      if (!line.empty() && line.rfind("#version", 0) != 0) merges.push_back(line);
    const std::string slow = path(dir, "tokenizer_config.json");
    if (io::file_exists(slow)) {
      const HfConfig tc{io::read_json_object(slow), slow};
      ATTEND_CHECK(!tc.flag("add_prefix_space", false),
                   "{}: \"add_prefix_space\": true is not supported", slow);
    }
  }
  // <|endoftext|> first: it is the beginning and end of every text.
  const auto eot = std::find(tokens.begin(), tokens.end(), "<|endoftext|>");
  if (eot != tokens.end()) {
    const auto id = static_cast<int32_t>(eot - tokens.begin());
    std::erase(specials, id);
    specials.insert(specials.begin(), id);
  }
  return data::Tokenizer::from_byte_bpe(data::ByteBpe(std::move(tokens), merges, specials, dir));
}

HfImport import_gpt2(const std::string& dir, const HfConfig& c) {
  const std::string act = activation(c, "activation_function", "gelu_new");
  ATTEND_CHECK(
      c.flag("scale_attn_weights", true) && !c.flag("scale_attn_by_inverse_layer_idx", false),
      "{}: \"scale_attn_weights\" false or \"scale_attn_by_inverse_layer_idx\" true "
      "is not supported",
      c.file);
  ATTEND_CHECK(!c.flag("add_cross_attention", false),
               "{}: \"add_cross_attention\": a GPT-2 with cross-attention is not supported",
               c.file);
  ATTEND_CHECK(c.flag("tie_word_embeddings", true),
               "{}: \"tie_word_embeddings\": false is not supported", c.file);
  const int64_t D = c.integer("n_embd"), H = c.integer("n_head"), L = c.integer("n_layer"),
                V = c.integer("vocab_size"), P = c.integer("n_positions");
  const int64_t F = c.has("n_inner") ? c.integer("n_inner") : 4 * D;
  ATTEND_CHECK(D % H == 0, "{}: \"n_embd\" {} is not divisible by \"n_head\" {}", c.file, D, H);
  const double eps = c.number("layer_norm_epsilon", 1e-5);

  HfImport out;
  out.model_type = "gpt2";
  out.tokenizer = sized(gpt2_tokenizer(dir), V, c, dir);
  if (c.has("eos_token_id"))
    ATTEND_CHECK(c.id("eos_token_id") == out.tokenizer.eos_id(),
                 "{}: \"eos_token_id\" is {} but the tokenizer's end of text is {}", c.file,
                 c.id("eos_token_id"), out.tokenizer.eos_id());

  const auto files = weight_files(dir, "AutoModelForCausalLM");
  const std::string prefix = base_prefix(files, "wte.weight", "transformer");
  // The attention-mask buffers of older checkpoints (attn.bias, attn.masked_bias) and the
  // tied lm_head copy are left out.
  HfTensors hf(
      files, prefix,
      [](const std::string& name) {
        return !name.ends_with(".attn.bias") && !name.ends_with(".attn.masked_bias") &&
               name != "lm_head.weight";
      },
      format("n_embd {}, n_inner {}, vocab_size {}, n_positions {}", D, F, V, P), out.weights);
  // Conv1D stores weights [in, out]: attend's Linear holds [out, in].
  const auto conv = [&](const std::string& base, int64_t in, int64_t o) {
    return std::pair{hf.take(base + ".weight", {in, o}).transpose(0, 1).contiguous(),
                     hf.take(base + ".bias", {o})};
  };
  hf.move("wte.weight", "embed_tokens.weight", {V, D});
  hf.move("wpe.weight", "decoder.embed_positions.weight", {P, D});
  for (int64_t l = 0; l < L; ++l) {
    const std::string from = "h." + std::to_string(l), to = "decoder.layers." + std::to_string(l);
    hf.move_norm(from + ".ln_1", to + ".self_attn_layer_norm", D);
    const auto [qkv, qkv_bias] = conv(from + ".attn.c_attn", D, 3 * D);  // [3D, D], [3D]
    const char* names[] = {"q_proj", "k_proj", "v_proj"};
    for (int64_t k = 0; k < 3; ++k) {
      const std::string p = to + ".self_attn." + names[k];
      out.weights.emplace_back(p + ".weight", qkv.slice(0, k * D, (k + 1) * D).contiguous());
      out.weights.emplace_back(p + ".bias", qkv_bias.slice(0, k * D, (k + 1) * D).contiguous());
    }
    const auto [o, o_bias] = conv(from + ".attn.c_proj", D, D);
    out.weights.emplace_back(to + ".self_attn.out_proj.weight", o);
    out.weights.emplace_back(to + ".self_attn.out_proj.bias", o_bias);
    hf.move_norm(from + ".ln_2", to + ".final_layer_norm", D);
    const auto [fc1, fc1_bias] = conv(from + ".mlp.c_fc", D, F);
    out.weights.emplace_back(to + ".fc1.weight", fc1);
    out.weights.emplace_back(to + ".fc1.bias", fc1_bias);
    const auto [fc2, fc2_bias] = conv(from + ".mlp.c_proj", F, D);
    out.weights.emplace_back(to + ".fc2.weight", fc2);
    out.weights.emplace_back(to + ".fc2.bias", fc2_bias);
  }
  hf.move_norm("ln_f", "decoder.layer_norm", D);
  const auto left = hf.left();
  ATTEND_CHECK(left.empty(), "{}: tensor '{}' is not part of a {}-layer GPT-2", dir,
               left.empty() ? "" : left.front(), L);

  write_keys(
      {"decoder_only", act, "pre", D, F, H, L, P, c.number("resid_pdrop", 0.1), eps, false},
      "gpt2", dir, out.config);
  return out;
}

// A special token of tokenizer_config.json: a string, or an object with its "content".
std::string special_token(const HfConfig& c, const char* key, const std::string& fallback) {
  if (c.has(key) && c.j[key].is_object()) {
    const HfConfig token{c.j[key], c.file + ": " + key};
    return token.string("content", fallback);
  }
  return c.string(key, fallback);
}

// The special ids of a translation checkpoint whose decoding starts from pad (MarianMT, T5):
// config.json's, where it gives them, must be the tokenizer's.
void seq2seq_ids(const HfConfig& c, const data::Tokenizer& tok) {
  const auto same = [&](const char* key, int32_t id, const char* what) {
    ATTEND_CHECK(!c.has(key) || c.id(key) == id, "{}: \"{}\" is {} but the tokenizer's {} is {}",
                 c.file, key, c.has(key) ? c.id(key) : 0, what, id);
  };
  same("pad_token_id", tok.pad_id(), "<pad>");
  same("eos_token_id", tok.eos_id(), "</s>");
  same("decoder_start_token_id", tok.pad_id(), "<pad> (where decoding starts)");
}

// The tokenizer of a MarianMT checkpoint: source.spm, target.spm and vocab.json, with the
// special tokens and options of tokenizer_config.json.
data::Tokenizer marian_tokenizer(const std::string& dir) {
  const std::string config_file = path(dir, "tokenizer_config.json");
  const HfConfig c{
      io::file_exists(config_file) ? io::read_json_object(config_file) : nlohmann::json::object(),
      config_file};
  ATTEND_CHECK(!c.flag("separate_vocabs", false),
               "{}: \"separate_vocabs\": true (a target vocabulary of its own) is not supported",
               config_file);
  ATTEND_CHECK(!c.flag("clean_up_tokenization_spaces", false),
               "{}: \"clean_up_tokenization_spaces\": true is not supported", config_file);
  for (const char* file : {"source.spm", "target.spm", "vocab.json"})
    ATTEND_CHECK(io::file_exists(path(dir, file)), "{}: no {} (MarianTokenizer's files)", dir,
                 file);
  const std::string vocab = path(dir, "vocab.json");
  return data::Tokenizer::from_marian(data::MarianVocab(
      io::read_file(path(dir, "source.spm")), io::read_file(path(dir, "target.spm")),
      tokens_by_id(io::read_json_object(vocab), vocab), special_token(c, "pad_token", "<pad>"),
      special_token(c, "unk_token", "<unk>"), special_token(c, "eos_token", "</s>"), dir));
}

HfImport import_marian(const std::string& dir, const HfConfig& c) {
  const std::string act = activation(c, "activation_function", "gelu");
  ATTEND_CHECK(!c.flag("normalize_before", false) && !c.flag("add_final_layer_norm", false) &&
                   !c.flag("normalize_embedding", false),
               "{}: \"normalize_before\", \"add_final_layer_norm\" and "
               "\"normalize_embedding\" are not supported (MarianMT is post-norm without them)",
               c.file);
  ATTEND_CHECK(
      c.flag("share_encoder_decoder_embeddings", true) && c.flag("tie_word_embeddings", true),
      "{}: \"share_encoder_decoder_embeddings\" / \"tie_word_embeddings\": false "
      "(separate vocabularies) is not supported",
      c.file);
  const int64_t D = c.integer("d_model"), V = c.integer("vocab_size"),
                H = c.integer("encoder_attention_heads"), F = c.integer("encoder_ffn_dim"),
                Le = c.integer("encoder_layers"), Ld = c.integer("decoder_layers"),
                P = c.integer("max_position_embeddings");
  ATTEND_CHECK(c.integer("decoder_attention_heads") == H && c.integer("decoder_ffn_dim") == F,
               "{}: the decoder's heads and FFN width must equal the encoder's "
               "(encoder_attention_heads {}, encoder_ffn_dim {})",
               c.file, H, F);
  ATTEND_CHECK(!c.has("decoder_vocab_size") || c.integer("decoder_vocab_size") == V,
               "{}: \"decoder_vocab_size\" {} differs from \"vocab_size\" {}: separate "
               "vocabularies are not supported",
               c.file, c.integer("decoder_vocab_size"), V);
  ATTEND_CHECK(D % H == 0 && D % 2 == 0,
               "{}: \"d_model\" {} must be even and divisible by the heads ({})", c.file, D, H);

  HfImport out;
  out.model_type = "marian";
  out.tokenizer = sized(marian_tokenizer(dir), V, c, dir);
  seq2seq_ids(c, out.tokenizer);

  const auto files = weight_files(dir, "AutoModelForSeq2SeqLM");
  const std::string prefix = base_prefix(files, "shared.weight", "model");
  // The tied copies of the token table (encoder/decoder embed_tokens, lm_head) and the
  // sinusoid tables older checkpoints store are left out: attend computes the table.
  HfTensors hf(
      files, prefix,
      [](const std::string& name) {
        return name != "encoder.embed_tokens.weight" && name != "decoder.embed_tokens.weight" &&
               name != "lm_head.weight" && !name.ends_with("embed_positions.weight");
      },
      format("d_model {}, encoder_ffn_dim {}, vocab_size {}", D, F, V), out.weights);
  hf.move("shared.weight", "embed_tokens.weight", {V, D});
  // The layers' tensors have attend's names already.
  for (const auto& [stack, layers] : {std::pair{"encoder", Le}, std::pair{"decoder", Ld}}) {
    for (int64_t l = 0; l < layers; ++l) {
      const std::string at = std::string(stack) + ".layers." + std::to_string(l) + ".";
      std::vector<std::string> attention = {"self_attn"};
      if (std::string(stack) == "decoder") attention.push_back("encoder_attn");
      for (const auto& a : attention) {
        for (const char* proj : {"q_proj", "k_proj", "v_proj", "out_proj"})
          hf.move_linear(at + a + "." + proj, at + a + "." + proj, D, D);
        hf.move_norm(at + a + "_layer_norm", at + a + "_layer_norm", D);
      }
      hf.move_linear(at + "fc1", at + "fc1", F, D);
      hf.move_linear(at + "fc2", at + "fc2", D, F);
      hf.move_norm(at + "final_layer_norm", at + "final_layer_norm", D);
    }
  }
  out.weights.emplace_back("output_bias", hf.take("final_logits_bias", {1, V}).reshape({V}));
  const auto left = hf.left();
  ATTEND_CHECK(left.empty(), "{}: tensor '{}' is not part of a {}+{}-layer MarianMT model", dir,
               left.empty() ? "" : left.front(), Le, Ld);

  write_keys({"encoder_decoder", act, "post", D, F, H, Le, P, c.number("dropout", 0.1), 1e-5,
              false},
             "marian", dir, out.config);
  out.config["model.decoder_layers"] = std::to_string(Ld);
  out.config["model.positions"] = "sinusoidal_halves";
  out.config["model.scale_embeddings"] = c.flag("scale_embedding", false) ? "true" : "false";
  out.config["model.source_eos"] = "true";
  out.config["model.logits_bias"] = "true";
  return out;
}

// The tokenizer of a T5 checkpoint: spiece.model with the sentinel tokens and options of
// tokenizer_config.json; `rows`: the model's token table.
data::Tokenizer t5_tokenizer(const std::string& dir, int64_t rows) {
  const std::string config_file = path(dir, "tokenizer_config.json");
  const HfConfig c{
      io::file_exists(config_file) ? io::read_json_object(config_file) : nlohmann::json::object(),
      config_file};
  ATTEND_CHECK(c.flag("legacy", true),
               "{}: \"legacy\": false (T5Tokenizer's newer handling of spaces after special "
               "tokens) is not supported",
               config_file);
  const std::string spm = path(dir, "spiece.model");
  ATTEND_CHECK(io::file_exists(spm), "{}: no spiece.model (T5Tokenizer's file)", dir);
  // The sentinels: additional_special_tokens when it lists them (then nothing else), else
  // extra_ids of them.
  int64_t extra = c.has("extra_ids") ? c.id("extra_ids") : 100;
  if (c.has("additional_special_tokens")) {
    const nlohmann::json& added = c.j["additional_special_tokens"];
    ATTEND_CHECK(added.is_array(), "{}: \"additional_special_tokens\" must be a list", config_file);
    for (size_t i = 0; i < added.size(); ++i) {
      const std::string t =
          added[i].is_object() ? added[i].value("content", "") : added[i].get<std::string>();
      ATTEND_CHECK(t.rfind("<extra_id_", 0) == 0,
                   "{}: \"additional_special_tokens\" [{}] \"{}\" is not a sentinel "
                   "(<extra_id_N>): other added tokens are not supported",
                   config_file, i, t);
    }
    if (!added.empty()) extra = static_cast<int64_t>(added.size());
  }
  data::T5Vocab vocab(io::read_file(spm), extra, rows,
                      c.flag("clean_up_tokenization_spaces", false), dir);
  // Where tokenizer_config.json numbers the sentinels, they must be where T5Tokenizer puts them.
  if (c.has("added_tokens_decoder") && c.j["added_tokens_decoder"].is_object())
    for (const auto& [id, token] : c.j["added_tokens_decoder"].items()) {
      const std::string content = token.is_object() ? token.value("content", "") : "";
      if (content.rfind("<extra_id_", 0) != 0) continue;
      ATTEND_CHECK(vocab.piece(static_cast<int32_t>(std::stoll(id))) == content,
                   "{}: added_tokens_decoder gives \"{}\" id {}, not where T5Tokenizer puts it",
                   config_file, content, id);
    }
  return data::Tokenizer::from_t5(std::move(vocab));
}

// T5 (v1.0, and v1.1 / flan's gated layout): RMSNorm, bucketed relative position bias, no score
// scaling, bias-free linears, tied output scaled by d_model^-0.5 when tied.
HfImport import_t5(const std::string& dir, const HfConfig& c) {
  const std::string proj = c.string("feed_forward_proj", "relu");
  const bool gated = proj.rfind("gated-", 0) == 0;
  const std::string act_name = gated ? proj.substr(6) : proj;
  ATTEND_CHECK(
      act_name == "relu" || act_name == "gelu" || act_name == "gelu_new" || act_name == "silu",
      "{}: \"feed_forward_proj\": \"{}\" is not supported (attend implements relu, "
      "gelu, gelu_new and silu, each optionally gated-)",
      c.file, proj);
  // transformers reads "gated-gelu" as the tanh approximation (gelu_new).
  const std::string act =
      act_name == "gelu_new" || (gated && act_name == "gelu") ? "gelu_tanh" : act_name;
  const int64_t D = c.integer("d_model"), V = c.integer("vocab_size"), H = c.integer("num_heads"),
                Dh = c.integer("d_kv"), F = c.integer("d_ff"), Le = c.integer("num_layers"),
                Ld = c.has("num_decoder_layers") ? c.integer("num_decoder_layers") : Le;
  const int64_t buckets =
      c.has("relative_attention_num_buckets") ? c.integer("relative_attention_num_buckets") : 32;
  const int64_t distance =
      c.has("relative_attention_max_distance") ? c.integer("relative_attention_max_distance") : 128;
  const bool tied = c.flag("tie_word_embeddings", true);
  ATTEND_CHECK(c.flag("is_encoder_decoder", true),
               "{}: \"is_encoder_decoder\": false (T5's encoder alone) is not supported", c.file);

  HfImport out;
  out.model_type = "t5";
  out.tokenizer = t5_tokenizer(dir, V);
  seq2seq_ids(c, out.tokenizer);

  const auto files = weight_files(dir, "AutoModelForSeq2SeqLM");
  // The tied copies of the token table (and of lm_head when tied) are left out.
  HfTensors hf(
      files, "",
      [&](const std::string& name) {
        return name != "encoder.embed_tokens.weight" && name != "decoder.embed_tokens.weight" &&
               (!tied || name != "lm_head.weight");
      },
      format("d_model {}, num_heads {}, d_kv {}, d_ff {}, vocab_size {}, "
             "relative_attention_num_buckets {}",
             D, H, Dh, F, V, buckets),
      out.weights);
  const Tensor table = hf.take("shared.weight", {V, D});
  if (tied) {
    out.weights.emplace_back("embed_tokens.weight", table);
  } else {  // one table for both stacks, lm_head apart: attend's untied layout has three
    out.weights.emplace_back("encoder.embed_tokens.weight", table);
    out.weights.emplace_back("decoder.embed_tokens.weight", table.clone());
    hf.move("lm_head.weight", "output_projection.weight", {V, D});
  }
  for (const auto& [stack, layers] : {std::pair{"encoder", Le}, std::pair{"decoder", Ld}}) {
    const std::string st = stack;
    hf.move(st + ".block.0.layer.0.SelfAttention.relative_attention_bias.weight",
            st + ".relative_attention_bias.weight", {buckets, H});
    for (int64_t l = 0; l < layers; ++l) {
      const std::string from = st + ".block." + std::to_string(l) + ".layer.";
      const std::string to = st + ".layers." + std::to_string(l) + ".";
      const auto attention = [&](const std::string& hf_name, int64_t sub, const std::string& name) {
        const std::string a = from + std::to_string(sub) + "." + hf_name + ".";
        for (const auto& [p, q] :
             {std::pair{"q", "q_proj"}, std::pair{"k", "k_proj"}, std::pair{"v", "v_proj"}})
          hf.move(a + p + ".weight", to + name + "." + q + ".weight", {H * Dh, D});
        hf.move(a + "o.weight", to + name + ".out_proj.weight", {D, H * Dh});
        hf.move(from + std::to_string(sub) + ".layer_norm.weight", to + name + "_layer_norm.weight",
                {D});
      };
      attention("SelfAttention", 0, "self_attn");
      if (st == "decoder") attention("EncDecAttention", 1, "encoder_attn");
      const std::string ff = from + (st == "decoder" ? "2" : "1");
      if (gated) {
        hf.move(ff + ".DenseReluDense.wi_0.weight", to + "fc1.weight", {F, D});
        hf.move(ff + ".DenseReluDense.wi_1.weight", to + "fc_up.weight", {F, D});
      } else {
        hf.move(ff + ".DenseReluDense.wi.weight", to + "fc1.weight", {F, D});
      }
      hf.move(ff + ".DenseReluDense.wo.weight", to + "fc2.weight", {D, F});
      hf.move(ff + ".layer_norm.weight", to + "final_layer_norm.weight", {D});
    }
    hf.move(st + ".final_layer_norm.weight", st + ".layer_norm.weight", {D});
  }
  const auto left = hf.left();
  ATTEND_CHECK(left.empty(), "{}: tensor '{}' is not part of a {}+{}-layer T5 model", dir,
               left.empty() ? "" : left.front(), Le, Ld);

  write_keys({"encoder_decoder", act, "pre", D, F, H, Le, 512, c.number("dropout_rate", 0.1),
              c.number("layer_norm_epsilon", 1e-6), false},
             "t5", dir, out.config);
  auto& m = out.config;
  m["model.decoder_layers"] = std::to_string(Ld);
  m["model.positions"] = "relative";
  m["model.relative_buckets"] = std::to_string(buckets);
  m["model.relative_max_distance"] = std::to_string(distance);
  m["model.norm_type"] = "rms";
  m["model.linear_bias"] = "false";
  m["model.gated_ffn"] = gated ? "true" : "false";
  m["model.head_dim"] = std::to_string(Dh);
  m["model.scale_attention"] = "false";
  m["model.share_embeddings"] = tied ? "true" : "false";
  if (tied) m["model.output_scale"] = format("{}", 1.0 / std::sqrt(static_cast<double>(D)));
  m["model.source_eos"] = "true";
  return out;
}

}  // namespace

HfImport import_hf(const std::string& dir) {
  ATTEND_CHECK(fs::is_directory(dir), "{}: not a directory", dir);
  const std::string file = path(dir, "config.json");
  ATTEND_CHECK(io::file_exists(file), "{}: no config.json (not a HuggingFace checkpoint)", dir);
  const HfConfig c{io::read_json_object(file), file};
  ATTEND_CHECK(c.has("model_type"), "{}: no \"model_type\"", file);
  const std::string type = c.string("model_type", "");
  if (type == "bert") return import_bert(dir, c, kBert);
  if (type == "distilbert") return import_bert(dir, c, kDistilBert);
  if (type == "gpt2") return import_gpt2(dir, c);
  if (type == "marian") return import_marian(dir, c);
  if (type == "t5") return import_t5(dir, c);
  ATTEND_FAIL(
      "{}: \"model_type\": \"{}\" is not supported (attend convert reads: bert, distilbert, "
      "gpt2, marian, t5)",
      file, type);
}

std::string export_gpt2(const std::string& model_dir, const std::string& out_dir) {
  ATTEND_CHECK(!fs::exists(out_dir),
               "convert --to hf: -o {}: already exists (choose a new directory; nothing was "
               "written)",
               out_dir);
  ATTEND_CHECK(models::model_arch(model_dir) == nn::Arch::kDecoderOnly,
               "convert --to hf: {} is not a decoder-only model: only decoder-only models are "
               "written so far (in GPT-2's layout)",
               model_dir);
  const std::string dir = models::resolve_model_dir(model_dir);
  ATTEND_CHECK(models::stored_precision(dir) == "fp32",
               "convert --to hf: {} holds int8 weights; write the fp32 model it was quantized from",
               dir);
  const models::LoadedLanguageModel lm = models::load_language_model_dir(dir);
  const nn::TransformerConfig& c = lm.model->config();
  // What GPT-2's layout cannot express, each naming the model key.
  const auto need = [&](bool ok, const char* key, const std::string& value) {
    ATTEND_CHECK(ok, "convert --to hf: {}: model.{} {} has no GPT-2 equivalent", dir, key, value);
  };
  need(c.norm == nn::Norm::kPre, "norm", nn::norm_name(c.norm));
  need(c.norm_type == nn::NormType::kLayer, "norm_type", nn::norm_type_name(c.norm_type));
  need(c.positions != nn::Positions::kRelative, "positions", "relative");
  need(c.linear_bias, "linear_bias", "false");
  need(!c.gated_ffn, "gated_ffn", "true");
  need(c.head_dim == 0 || c.head_dim * c.heads == c.d_model, "head_dim",
       std::to_string(c.head_dim));
  need(c.scale_attention, "scale_attention", "false");
  need(c.output_scale == 1.0, "output_scale", format("{}", c.output_scale));
  need(!c.logits_bias, "logits_bias", "true");
  need(!c.embed_norm, "embed_norm", "true");
  const char* activation = c.activation == nn::Activation::kGeluTanh ? "gelu_new"
                           : c.activation == nn::Activation::kSilu
                               ? "silu"
                               : nn::activation_name(c.activation);

  std::map<std::string, Tensor> p;
  for (const auto& [name, v] : lm.model->named_parameters()) p.emplace(name, v.value());
  const auto at = [&](const std::string& name) -> const Tensor& {
    const auto it = p.find(name);
    ATTEND_CHECK(it != p.end(), "convert --to hf: {}: the model has no '{}'", dir, name);
    return it->second;
  };
  const int64_t D = c.d_model, V = c.tgt_vocab, L = c.decoder_layers;
  const int64_t P = c.max_positions;
  // The token table feeds the stack scaled by sqrt(d_model) when model.scale_embeddings: GPT-2
  // has no such scale, so wte holds the scaled table and lm_head the unscaled one (untied).
  const Tensor& table =
      c.share_embeddings ? at("embed_tokens.weight") : at("decoder.embed_tokens.weight");
  const bool tied = c.share_embeddings && !c.scale_embeddings;
  Weights w;
  const auto t = [](const Tensor& x) {
    return x.transpose(0, 1).contiguous();
  };                                                        // Conv1D: [in, out]
  const auto rows = [](const std::vector<Tensor>& parts) {  // stacked along the first dimension
    std::vector<float> all;
    int64_t n = 0;
    for (const Tensor& x : parts) {
      const std::vector<float> v = x.to_vector<float>();
      all.insert(all.end(), v.begin(), v.end());
      n += x.size(0);
    }
    Shape shape = parts.front().shape();
    shape[0] = n;
    return Tensor::from_vector(all, shape);
  };
  w.emplace_back(
      "transformer.wte.weight",
      c.scale_embeddings ? ops::affine(table, std::sqrt(static_cast<double>(D)), 0.0) : table);
  w.emplace_back(
      "transformer.wpe.weight",
      c.positions == nn::Positions::kLearned
          ? at("decoder.embed_positions.weight")
          : nn::sinusoidal_positions(P, D, c.positions == nn::Positions::kSinusoidalHalves));
  for (int64_t l = 0; l < L; ++l) {
    const std::string from = "decoder.layers." + std::to_string(l) + ".",
                      to = "transformer.h." + std::to_string(l) + ".";
    w.emplace_back(to + "ln_1.weight", at(from + "self_attn_layer_norm.weight"));
    w.emplace_back(to + "ln_1.bias", at(from + "self_attn_layer_norm.bias"));
    std::vector<Tensor> qkv, qkv_bias;
    for (const char* proj : {"q_proj", "k_proj", "v_proj"}) {
      qkv.push_back(at(from + "self_attn." + proj + ".weight"));
      qkv_bias.push_back(at(from + "self_attn." + proj + ".bias"));
    }
    w.emplace_back(to + "attn.c_attn.weight", t(rows(qkv)));
    w.emplace_back(to + "attn.c_attn.bias", rows(qkv_bias));
    w.emplace_back(to + "attn.c_proj.weight", t(at(from + "self_attn.out_proj.weight")));
    w.emplace_back(to + "attn.c_proj.bias", at(from + "self_attn.out_proj.bias"));
    w.emplace_back(to + "ln_2.weight", at(from + "final_layer_norm.weight"));
    w.emplace_back(to + "ln_2.bias", at(from + "final_layer_norm.bias"));
    w.emplace_back(to + "mlp.c_fc.weight", t(at(from + "fc1.weight")));
    w.emplace_back(to + "mlp.c_fc.bias", at(from + "fc1.bias"));
    w.emplace_back(to + "mlp.c_proj.weight", t(at(from + "fc2.weight")));
    w.emplace_back(to + "mlp.c_proj.bias", at(from + "fc2.bias"));
  }
  w.emplace_back("transformer.ln_f.weight", at("decoder.layer_norm.weight"));
  w.emplace_back("transformer.ln_f.bias", at("decoder.layer_norm.bias"));
  if (!tied)
    w.emplace_back("lm_head.weight", c.share_embeddings ? table : at("output_projection.weight"));

  nlohmann::ordered_json config = {{"architectures", {"GPT2LMHeadModel"}},
                                   {"model_type", "gpt2"},
                                   {"vocab_size", V},
                                   {"n_positions", P},
                                   {"n_embd", D},
                                   {"n_layer", L},
                                   {"n_head", c.heads},
                                   {"n_inner", c.ffn},
                                   {"activation_function", activation},
                                   {"layer_norm_epsilon", c.norm_eps},
                                   {"resid_pdrop", c.dropout},
                                   {"embd_pdrop", c.dropout},
                                   {"attn_pdrop", 0.0},
                                   {"tie_word_embeddings", tied},
                                   {"bos_token_id", c.bos_id},
                                   {"eos_token_id", c.eos_id},
                                   {"torch_dtype", "float32"}};
  const std::string tmp = out_dir + ".tmp";
  std::error_code ec;
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  ATTEND_CHECK(!ec, "convert --to hf: cannot create {}: {}", tmp, ec.message());
  io::save_safetensors(path(tmp, "model.safetensors"), w, {{"format", "pt"}});
  io::write_file_atomic(path(tmp, "config.json"), config.dump(2) + "\n");
  std::string wrote = "config.json, model.safetensors";
  if (const data::ByteBpe* bpe = lm.tokenizer.byte_bpe()) {
    nlohmann::ordered_json vocab;
    for (int32_t id = 0; id < bpe->vocab_size(); ++id) vocab[bpe->piece(id)] = id;
    std::string merges = "#version: 0.2\n";
    for (const auto& m : bpe->merges()) merges += m + "\n";
    io::write_file_atomic(path(tmp, "vocab.json"), vocab.dump() + "\n");
    io::write_file_atomic(path(tmp, "merges.txt"), merges);
    wrote += ", vocab.json, merges.txt";
  } else {
    wrote +=
        " (no tokenizer files: GPT-2's tokenizer is byte-level BPE, this model's is not; "
        "its ids are attend's)";
  }
  io::fsync_dir(tmp);
  fs::rename(tmp, out_dir, ec);
  ATTEND_CHECK(!ec, "convert --to hf: cannot rename {} to {}: {}", tmp, out_dir, ec.message());
  return wrote;
}

}  // namespace attend::convert
