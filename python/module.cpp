// attend._attend: the C++ engine under the Python package `attend` (python/attend/__init__.py is
// the API users see: argument names, defaults, result classes, docstrings). This layer only
// converts: Python values in, the library's own entry points (decode::Translator, Generator,
// data::Tokenizer, train::train) called with the GIL released, Python values out. It never
// decodes, tokenizes or trains itself, so what Python gets is what the CLI prints.
//
// Between decoding steps a call checks for Ctrl-C (decode::StepCheck): on the main thread it
// takes the GIL for PyErr_CheckSignals, and a pending KeyboardInterrupt stops the call there.
// attend::Error (a caller's mistake: an option, an input, a file's contents) arrives as
// ValueError with attend's message; other C++ exceptions as RuntimeError.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/function.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/vector.h>

#include <cstring>
#include <deque>
#include <exception>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "apps/report.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "core/utf8.h"
#include "decode/embed.h"
#include "decode/generator.h"
#include "decode/translator.h"
#include "io/config.h"
#include "models/model_dir.h"
#include "train/options.h"
#include "train/trainer.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace attend::python {
namespace {

// Thrown by a StepCheck when Python has an exception pending (KeyboardInterrupt); the call then
// raises that exception once it holds the GIL again.
struct PythonPending : std::exception {};

unsigned long g_main_thread = 0;  // the interpreter's main thread (where signals are handled)

// The check a long call makes before each decoding step: on the main thread only (elsewhere
// PyErr_CheckSignals does nothing), with the GIL taken for the moment it runs.
decode::StepCheck signal_check() {
  if (PyThread_get_thread_ident() != g_main_thread) return {};
  return [] {
    nb::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() != 0) throw PythonPending();
  };
}

// Runs f() with the GIL released; an exception Python left pending (PythonPending) is raised.
template <typename F>
auto without_gil(F&& f) {
  try {
    nb::gil_scoped_release release;
    return f();
  } catch (const PythonPending&) {
    throw nb::python_error();
  }
}

// Texts as bytes: Python's str encoded with surrogateescape, so that a file read that way keeps
// its invalid bytes for attend to refuse or repair, as the command line does.
std::vector<std::string> texts(const std::vector<nb::bytes>& in) {
  std::vector<std::string> out;
  out.reserve(in.size());
  for (const nb::bytes& b : in) out.emplace_back(b.c_str(), b.size());
  return out;
}

// One search's options as the Python layer passes them (attend's names; python/attend maps
// CTranslate2's onto them).
decode::SearchOptions search_options(const nb::dict& o) {
  decode::SearchOptions s;
  for (const auto& [key, value] : o) {
    const std::string k = nb::cast<std::string>(key);
    if (k == "beam")
      s.beam = nb::cast<int64_t>(value);
    else if (k == "alpha")
      s.alpha = nb::cast<double>(value);
    else if (k == "n_best")
      s.n_best = nb::cast<int64_t>(value);
    else if (k == "max_extra")
      s.max_extra = nb::cast<int64_t>(value);
    else if (k == "max_length")
      s.max_length = nb::cast<int64_t>(value);
    else if (k == "min_length")
      s.min_length = nb::cast<int64_t>(value);
    else if (k == "sample")
      s.sample = nb::cast<bool>(value);
    else if (k == "temperature")
      s.temperature = nb::cast<double>(value);
    else if (k == "top_k")
      s.top_k = nb::cast<int64_t>(value);
    else if (k == "top_p")
      s.top_p = nb::cast<double>(value);
    else if (k == "seed")
      s.seed = nb::cast<uint64_t>(value);
    else
      throw nb::value_error(("search option '" + k + "' is not one of attend's").c_str());
  }
  return s;
}

// ---------------------------------------------------------------- models

// Values as a numpy array of `shape` that owns them.
nb::ndarray<nb::numpy, float> numpy_array(std::vector<float>&& values,
                                          const std::vector<size_t>& shape) {
  auto* data = new std::vector<float>(std::move(values));
  nb::capsule owner(data, [](void* p) noexcept { delete static_cast<std::vector<float>*>(p); });
  return nb::ndarray<nb::numpy, float>(data->data(), shape.size(), shape.data(), owner);
}

// A tensor's shape as numpy arrays take it.
std::vector<size_t> shape_of(const Tensor& t) {
  std::vector<size_t> shape;
  for (int64_t d = 0; d < t.dim(); ++d) shape.push_back(static_cast<size_t>(t.size(d)));
  return shape;
}

// An f32 tensor as a numpy array (a copy: results of a computation).
nb::ndarray<nb::numpy, float> to_numpy(const Tensor& t) {
  return numpy_array(t.contiguous().to_vector<float>(), shape_of(t));
}

class Translator {
 public:
  Translator(const std::string& path, const std::string& precision)
      : m_(models::load_model_dir(path)) {
    models::set_precision(*m_.model, m_.dir, precision, "precision");
    translator_ = std::make_unique<decode::Translator>(m_);
  }
  const std::string& dir() const { return m_.dir; }
  const data::Tokenizer& tokenizer() const { return m_.tokenizer; }

  // Per line its n-best list of (text, token ids, score, log_prob); and the warnings given.
  using Hyp = std::tuple<std::string, std::vector<int32_t>, double, double>;
  std::pair<std::vector<std::vector<Hyp>>, std::vector<std::string>> translate(
      const std::vector<nb::bytes>& line_bytes, const std::vector<nb::bytes>& prefix_bytes,
      const nb::dict& search, int64_t batch_tokens, int64_t max_input_tokens,
      bool replace_bad_utf8) const {
    const std::vector<std::string> lines = texts(line_bytes), prefixes = texts(prefix_bytes);
    decode::TranslateOptions o;
    o.search = search_options(search);
    o.batch_tokens = batch_tokens;
    o.max_input_tokens = max_input_tokens;
    o.replace_bad_utf8 = replace_bad_utf8;
    o.check = signal_check();
    std::vector<std::string> warnings;
    auto found = without_gil([&] {
      return translator_->translate(
          lines, o, "source", [&](const std::string& w) { warnings.push_back(w); }, prefixes);
    });
    std::vector<std::vector<Hyp>> out(found.size());
    for (size_t i = 0; i < found.size(); ++i)
      for (auto& t : found[i])
        out[i].emplace_back(std::move(t.text), t.tokens, t.score, t.log_prob);
    return {std::move(out), std::move(warnings)};
  }

  std::vector<std::vector<double>> score(const std::vector<nb::bytes>& sources,
                                         const std::vector<nb::bytes>& targets,
                                         int64_t batch_tokens, int64_t max_input_tokens,
                                         bool replace_bad_utf8) const {
    const std::vector<std::string> src = texts(sources), tgt = texts(targets);
    decode::TranslateOptions o;
    o.batch_tokens = batch_tokens;
    o.max_input_tokens = max_input_tokens;
    o.replace_bad_utf8 = replace_bad_utf8;
    o.check = signal_check();
    return without_gil([&] { return translator_->score(src, tgt, o, "source"); });
  }

  // The encoder attention behind translating `line` into `target` (ids): float32
  // [layers, heads, target + 1, source] (decode::cross_attention), owned by the array.
  nb::ndarray<nb::numpy, float> attention(const nb::bytes& line_bytes,
                                          const std::vector<int32_t>& target,
                                          int64_t max_input_tokens, bool replace_bad_utf8) const {
    const std::string line(line_bytes.c_str(), line_bytes.size());
    decode::TranslateOptions o;
    o.max_input_tokens = max_input_tokens;
    o.replace_bad_utf8 = replace_bad_utf8;
    std::vector<size_t> shape;
    std::vector<float> values = without_gil([&] {
      const std::vector<int32_t> source = translator_->source_ids(line, o);
      ATTEND_CHECK(!source.empty(), "attention: the line is empty");
      const std::vector<Tensor> layers = decode::cross_attention(*m_.model, source, target);
      std::vector<float> out;
      for (const Tensor& l : layers) {
        const std::vector<float> w = l.to_vector<float>();
        out.insert(out.end(), w.begin(), w.end());
      }
      shape = {layers.size(), static_cast<size_t>(layers[0].size(0)),
               static_cast<size_t>(layers[0].size(1)), static_cast<size_t>(layers[0].size(2))};
      return out;
    });
    return numpy_array(std::move(values), shape);
  }

 private:
  models::LoadedModel m_;
  std::unique_ptr<decode::Translator> translator_;
};

decode::GenerateOptions generate_options(const nb::dict& o) {
  decode::GenerateOptions g;
  for (const auto& [key, value] : o) {
    const std::string k = nb::cast<std::string>(key);
    if (k == "max_new")
      g.max_new = nb::cast<int64_t>(value);
    else if (k == "temperature")
      g.temperature = nb::cast<double>(value);
    else if (k == "top_k")
      g.top_k = nb::cast<int64_t>(value);
    else if (k == "top_p")
      g.top_p = nb::cast<double>(value);
    else if (k == "seed")
      g.seed = nb::cast<uint64_t>(value);
    else if (k == "stop_at_eos")
      g.stop_at_eos = nb::cast<bool>(value);
    else if (k == "truncate_left")
      g.truncate_left = nb::cast<bool>(value);
    else if (k == "beam")
      g.beam = nb::cast<int64_t>(value);
    else if (k == "alpha")
      g.alpha = nb::cast<double>(value);
    else
      throw nb::value_error(("generation option '" + k + "' is not one of attend's").c_str());
  }
  g.validate();
  return g;
}

// One prompt's generation read token by token (Generator::stream): each next() runs decoding
// steps on the caller's thread, with the GIL released, until a piece of text is drawn. Python
// reads it through a generator, which already refuses to be advanced by two threads at once.
class TokenStream {
 public:
  TokenStream(const decode::Generator& gen, const std::vector<int32_t>& prompt,
              decode::GenerateOptions o) {
    o.check = signal_check();
    run_ = without_gil([&] {
      auto run = std::make_unique<decode::GenerationRun>(
          gen, std::vector<std::vector<int32_t>>{prompt}, o, true);
      take(*run);
      return run;
    });
  }

  // The next piece of text, or None when the generation has ended.
  nb::object next() {
    while (pending_.empty() && run_ && !run_->done())
      without_gil([&] {
        run_->step();
        take(*run_);
        return 0;
      });
    if (pending_.empty()) {
      run_.reset();
      return nb::none();
    }
    std::string piece = std::move(pending_.front());
    pending_.pop_front();
    return nb::str(piece.data(), piece.size());
  }

  // Ends the generation (its session and cache are freed).
  void close() { run_.reset(); }

 private:
  void take(decode::GenerationRun& run) {
    for (auto& [i, piece] : run.take_text()) pending_.push_back(std::move(piece));
  }
  std::unique_ptr<decode::GenerationRun> run_;
  std::deque<std::string> pending_;
};

class Generator {
 public:
  Generator(const std::string& path, const std::string& precision)
      : m_(models::load_language_model_dir(path)) {
    models::set_precision(*m_.model, m_.dir, precision, "precision");
    gen_ = std::make_unique<decode::Generator>(*m_.model, m_.tokenizer);
  }
  const std::string& dir() const { return m_.dir; }
  int64_t context() const { return gen_->context(); }

  std::vector<int32_t> prompt_ids(const nb::bytes& bytes, const std::string& where,
                                  bool replace_bad_utf8) const {
    const std::string prompt(bytes.c_str(), bytes.size());
    return gen_->prompt_ids(replace_bad_utf8 && !valid_utf8(prompt) ? repair_utf8(prompt) : prompt,
                            where);
  }

  // Per prompt (text, token ids, prompt tokens, tokens cut, ended by EOS, log_prob).
  using Out = std::tuple<std::string, std::vector<int32_t>, int64_t, int64_t, bool, double>;
  std::vector<Out> generate(const std::vector<std::vector<int32_t>>& prompts,
                            const nb::dict& options) const {
    decode::GenerateOptions o = generate_options(options);
    o.check = signal_check();
    auto gens = without_gil([&] { return gen_->generate(prompts, o); });
    std::vector<Out> out;
    for (auto& g : gens)
      out.emplace_back(std::move(g.text), g.tokens, g.prompt_tokens, g.cut, g.ended, g.log_prob);
    return out;
  }

  TokenStream* stream(const std::vector<int32_t>& prompt, const nb::dict& options) const {
    return new TokenStream(*gen_, prompt, generate_options(options));
  }

 private:
  models::LoadedLanguageModel m_;
  std::unique_ptr<decode::Generator> gen_;
};

class Encoder {
 public:
  Encoder(const std::string& path, const std::string& precision)
      : m_(models::load_masked_model_dir(path)) {
    models::set_precision(*m_.model, m_.dir, precision, "precision");
  }
  const std::string& dir() const { return m_.dir; }
  int64_t dim() const { return m_.model->config().d_model; }

  nb::ndarray<nb::numpy, float> embed(const std::vector<nb::bytes>& texts_in,
                                      const std::string& pooling, bool normalize,
                                      int64_t batch_tokens) const {
    const std::vector<std::string> in = texts(texts_in);
    decode::EmbedOptions o;
    o.pooling = decode::parse_pooling(pooling, "pooling");
    o.normalize = normalize;
    o.batch_tokens = batch_tokens;
    o.check = signal_check();
    const Tensor e = without_gil([&] { return decode::embed(*m_.model, m_.tokenizer, in, o); });
    return to_numpy(e);
  }

  // The top_k fillers of the one mask in `text`: (id, piece, probability, filled text).
  std::vector<std::tuple<int32_t, std::string, double, std::string>> fill_mask(
      const nb::bytes& text, int64_t top_k) const {
    models::require_token_head(m_, "fill_mask");
    const std::string in(text.c_str(), text.size());
    const auto found =
        without_gil([&] { return decode::fill_mask(*m_.model, m_.tokenizer, in, top_k); });
    std::vector<std::tuple<int32_t, std::string, double, std::string>> out;
    for (const auto& f : found) out.emplace_back(f.id, f.piece, f.probability, f.text);
    return out;
  }

  // Per text (its ids, its last hidden states [ids, d_model]).
  std::vector<std::pair<std::vector<int32_t>, nb::ndarray<nb::numpy, float>>> forward(
      const std::vector<nb::bytes>& texts_in, int64_t batch_tokens) const {
    const std::vector<std::string> in = texts(texts_in);
    decode::EmbedOptions o;
    o.batch_tokens = batch_tokens;
    o.check = signal_check();
    std::vector<decode::Hidden> hidden =
        without_gil([&] { return decode::hidden_states(*m_.model, m_.tokenizer, in, o); });
    std::vector<std::pair<std::vector<int32_t>, nb::ndarray<nb::numpy, float>>> out;
    for (decode::Hidden& h : hidden) out.emplace_back(std::move(h.ids), to_numpy(h.states));
    return out;
  }

 private:
  models::LoadedMaskedModel m_;
};

// Any family's model for the low level: its weights as read-only numpy views of the model's
// own memory, its logits for one input.
class Model {
 public:
  Model(const std::string& path, const std::string& precision) : arch_(models::model_arch(path)) {
    auto take = [&](auto loaded) {
      dir_ = loaded.dir;
      tokenizer_ = std::move(loaded.tokenizer);
      model_ = std::move(loaded.model);
    };
    if (arch_ == nn::Arch::kEncoderDecoder)
      take(models::load_model_dir(path));
    else if (arch_ == nn::Arch::kDecoderOnly)
      take(models::load_language_model_dir(path));
    else
      take(models::load_masked_model_dir(path));
    models::set_precision(*model_, dir_, precision, "precision");
  }
  const std::string& dir() const { return dir_; }
  const data::Tokenizer& tokenizer() const { return tokenizer_; }

  // The configuration the model was built with (model.* keys, without "model.", as resolved
  // from its preset, config.json and tokenizer: vocabulary sizes and special ids included).
  nb::dict config() const {
    const nn::TransformerConfig& c = model_->config();
    nb::dict d;
    d["arch"] = nn::arch_name(arch_);
    d["src_vocab"] = c.src_vocab;
    d["tgt_vocab"] = c.tgt_vocab;
    d["d_model"] = c.d_model;
    d["ffn"] = c.ffn;
    d["heads"] = c.heads;
    d["encoder_layers"] = c.encoder_layers;
    d["decoder_layers"] = c.decoder_layers;
    d["dropout"] = c.dropout;
    d["activation"] = nn::activation_name(c.activation);
    d["norm"] = nn::norm_name(c.norm);
    d["positions"] = nn::positions_name(c.positions);
    d["max_positions"] = c.max_positions;
    d["share_embeddings"] = c.share_embeddings;
    d["source_eos"] = c.source_eos;
    d["attention"] = c.attention.kind == nn::AttentionKind::kLocal ? "local" : "full";
    d["window"] = c.attention.window;
    d["global_tokens"] = c.attention.global_tokens;
    d["pad_id"] = c.pad_id;
    d["unk_id"] = c.unk_id;
    d["bos_id"] = c.bos_id;
    d["eos_id"] = c.eos_id;
    return d;
  }

  std::vector<std::string> weight_names() const {
    std::vector<std::string> out;
    for (const auto& [name, p] : model_->named_parameters()) out.push_back(name);
    return out;
  }

  // The parameter `name` as a read-only array over the model's memory; `self` (the Python
  // object holding this Model) stays alive while the array does.
  nb::object weight(const std::string& name, nb::handle self) const {
    for (const auto& [n, p] : model_->named_parameters()) {
      if (n != name) continue;
      const Tensor& t = p.value();
      ATTEND_CHECK(t.device().is_cpu(), "weight {}: on {}, not the CPU", name, t.device().str());
      const std::vector<size_t> shape = shape_of(t);
      switch (t.dtype()) {
        case DType::kF32:
          return nb::cast(nb::ndarray<nb::numpy, const float>(
              static_cast<const float*>(t.raw_data()), shape.size(), shape.data(), self));
        case DType::kI8:
          return nb::cast(nb::ndarray<nb::numpy, const int8_t>(
              static_cast<const int8_t*>(t.raw_data()), shape.size(), shape.data(), self));
        default:
          ATTEND_FAIL(
              "weight {}: stored as {}, which numpy has no type for (load with "
              "precision \"fp32\")",
              name, dtype_name(t.dtype()));
      }
    }
    ATTEND_FAIL("weight '{}': no such weight (weight_names() lists them)", name);
  }

  // Teacher-forced logits [positions, vocabulary]: an encoder-decoder's for BOS + target given
  // source; a decoder-only model's for the prompt ids of `text`; an encoder-only model's for
  // its encoder ids of `text`.
  nb::ndarray<nb::numpy, float> logits(const nb::bytes& text_bytes,
                                       const nb::bytes& target_bytes) const {
    const std::string text(text_bytes.c_str(), text_bytes.size());
    const std::string target(target_bytes.c_str(), target_bytes.size());
    const Tensor z = without_gil([&] {
      auto one = [](const std::vector<int32_t>& ids) {
        const auto n = static_cast<int64_t>(ids.size());
        return std::pair{Tensor::from_vector(ids, {1, n}),
                         Tensor::from_vector(std::vector<int32_t>{static_cast<int32_t>(n)}, {1})};
      };
      if (arch_ == nn::Arch::kEncoderDecoder) {
        const auto& m = static_cast<const nn::EncoderDecoder&>(*model_);
        const std::vector<int32_t> src =
            decode::Translator(m, tokenizer_).source_ids(text, {}, "source");
        ATTEND_CHECK(!src.empty(), "logits: the source is empty");
        ATTEND_CHECK(valid_utf8(target), "logits: the target is not valid UTF-8");
        std::vector<int32_t> tgt = {m.config().bos_id};
        for (const int32_t id : tokenizer_.encode_target(target)) tgt.push_back(id);
        const auto [s, sl] = one(src);
        const auto [t, tl] = one(tgt);
        return m.forward(s, sl, t, tl, 0).value();
      }
      if (arch_ == nn::Arch::kDecoderOnly) {
        const auto& m = static_cast<const nn::DecoderOnly&>(*model_);
        const auto [t, tl] = one(decode::Generator(m, tokenizer_).prompt_ids(text, "text"));
        return m.forward(t, tl, 0).value();
      }
      const auto& m = static_cast<const nn::EncoderOnly&>(*model_);
      const auto [t, tl] = one(decode::encoder_ids(m, tokenizer_, text, "text"));
      return m.forward(t, tl, 0).value();
    });
    return to_numpy(z);
  }

 private:
  nn::Arch arch_;
  std::string dir_;
  data::Tokenizer tokenizer_;
  std::unique_ptr<nn::Model> model_;
};

// The constructor of every model class in Python: loading (files, checksums, weights) runs with
// the GIL released.
template <typename T>
void load(T* self, const std::string& path, const std::string& precision) {
  without_gil([&] {
    new (self) T(path, precision);
    return 0;
  });
}

// ---------------------------------------------------------------- training

// Trains with the keys given (train.cpp's order: defaults, the YAML file, then the keys) and
// on_record called with each train.jsonl record (returning False stops with a checkpoint).
// Returns (out directory, steps, interrupted by Ctrl-C, stopped by a callback).
std::tuple<std::string, int64_t, bool, bool> train(
    const std::string& yaml, const std::vector<std::pair<std::string, std::string>>& keys,
    bool resume, const nb::object& on_record) {
  const io::Config c = train::run_config(
      [&](io::Config& cfg) {
        if (!yaml.empty()) cfg.load_yaml(yaml);
        for (const auto& [k, v] : keys) cfg.set(k, v, "python");
      },
      resume, "resume");
  std::exception_ptr failed;  // the callback's exception, raised once training has stopped
  train::RecordHook hook;
  if (!on_record.is_none())
    hook = [&](const std::string& record) {
      nb::gil_scoped_acquire gil;
      try {
        return nb::cast<bool>(on_record(nb::str(record.data(), record.size())));
      } catch (...) {
        failed = std::current_exception();
        return false;
      }
    };
  const train::TrainResult r = without_gil([&] { return train::train(c, resume, hook); });
  if (failed) std::rethrow_exception(failed);
  return {c.get_string("train.out"), r.steps, r.interrupted, r.stopped};
}

}  // namespace
}  // namespace attend::python

NB_MODULE(_attend, m) {
  using namespace attend;
  using namespace attend::python;
  g_main_thread = PyThread_get_thread_ident();
  m.doc() = "attend's C++ engine (use the package `attend`, which documents every argument)";
  nb::register_exception_translator([](const std::exception_ptr& p, void*) {
    try {
      std::rethrow_exception(p);
    } catch (const Error& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    }
  });

  m.def("info", &apps::info_report, "What `attend info` prints.");
  m.def("set_threads", &set_num_threads, "n"_a, "Sets the process-wide worker thread count.");
  m.def("threads", &num_threads, "The process-wide worker thread count.");
  m.def("resolve_model_dir", &models::resolve_model_dir, "path"_a);
  nb::class_<data::Tokenizer>(m, "Tokenizer")
      .def_static(
          "load", [](const std::string& dir) { return models::read_tokenizer(dir); }, "dir"_a)
      .def("encode", &data::Tokenizer::encode, "text"_a)
      .def("encode_target", &data::Tokenizer::encode_target, "text"_a)
      .def("decode", &data::Tokenizer::decode, "ids"_a)
      .def("pieces", &data::Tokenizer::pieces, "text"_a)
      .def("piece", &data::Tokenizer::piece, "id"_a)
      .def_prop_ro("vocab_size", &data::Tokenizer::vocab_size)
      .def_prop_ro("is_char", &data::Tokenizer::is_char)
      .def_prop_ro("pad_id", &data::Tokenizer::pad_id)
      .def_prop_ro("unk_id", &data::Tokenizer::unk_id)
      .def_prop_ro("bos_id", &data::Tokenizer::bos_id)
      .def_prop_ro("eos_id", &data::Tokenizer::eos_id)
      .def_prop_ro("mask_id", &data::Tokenizer::mask_id);

  nb::class_<Translator>(m, "Translator")
      .def("__init__", &load<Translator>, "path"_a, "precision"_a)
      .def_prop_ro("dir", &Translator::dir)
      .def_prop_ro("tokenizer", &Translator::tokenizer, nb::rv_policy::reference_internal)
      .def("translate", &Translator::translate, "lines"_a, "prefixes"_a, "search"_a,
           "batch_tokens"_a, "max_input_tokens"_a, "replace_bad_utf8"_a)
      .def("score", &Translator::score, "sources"_a, "targets"_a, "batch_tokens"_a,
           "max_input_tokens"_a, "replace_bad_utf8"_a)
      .def("attention", &Translator::attention, "line"_a, "target"_a, "max_input_tokens"_a,
           "replace_bad_utf8"_a);

  nb::class_<TokenStream>(m, "TokenStream")
      .def("next", &TokenStream::next)
      .def("close", &TokenStream::close);

  nb::class_<Generator>(m, "Generator")
      .def("__init__", &load<Generator>, "path"_a, "precision"_a)
      .def_prop_ro("dir", &Generator::dir)
      .def_prop_ro("context", &Generator::context)
      .def("prompt_ids", &Generator::prompt_ids, "prompt"_a, "where"_a, "replace_bad_utf8"_a)
      .def("generate", &Generator::generate, "prompts"_a, "options"_a)
      .def("stream", &Generator::stream, "prompt"_a, "options"_a, nb::keep_alive<0, 1>(),
           nb::rv_policy::take_ownership);

  nb::class_<Encoder>(m, "Encoder")
      .def("__init__", &load<Encoder>, "path"_a, "precision"_a)
      .def_prop_ro("dir", &Encoder::dir)
      .def_prop_ro("dim", &Encoder::dim)
      .def("embed", &Encoder::embed, "texts"_a, "pooling"_a, "normalize"_a, "batch_tokens"_a)
      .def("forward", &Encoder::forward, "texts"_a, "batch_tokens"_a)
      .def("fill_mask", &Encoder::fill_mask, "text"_a, "top_k"_a);

  nb::class_<Model>(m, "Model")
      .def("__init__", &load<Model>, "path"_a, "precision"_a)
      .def_prop_ro("dir", &Model::dir)
      .def_prop_ro("tokenizer", &Model::tokenizer, nb::rv_policy::reference_internal)
      .def("config", &Model::config)
      .def("weight_names", &Model::weight_names)
      .def(
          "weight",
          [](nb::handle self, const std::string& name) {
            return nb::cast<const Model&>(self).weight(name, self);
          },
          "name"_a)
      .def("logits", &Model::logits, "text"_a, "target"_a);

  m.def("train", &python::train, "yaml"_a, "keys"_a, "resume"_a, "on_record"_a.none());
}
