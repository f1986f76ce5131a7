// `attend serve`: translation, language and embedding models over HTTP, with a web page
// (src/serve/server.h).
// Models load before the socket opens, so a bad model directory or a port in use stops start-up
// with one message. SIGTERM and SIGINT stop accepting, let the requests being served finish, and
// exit 0.
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "apps/cli.h"
#include "core/error.h"
#include "io/file.h"
#include "models/model_dir.h"
#include "nn/transformer.h"
#include "serve/server.h"

namespace attend::apps {
namespace {

struct ServeArgs {
  std::vector<std::string> models;
  std::string api_key_file, precision;
  serve::ServerOptions server;
  int threads = 0;
};

// "NAME=DIR", or "DIR" named by its last path component.
std::pair<std::string, std::string> model_flag(const std::string& s) {
  const auto eq = s.find('=');
  if (eq != std::string::npos && s.substr(0, eq).find('/') == std::string::npos) {
    ATTEND_CHECK(eq > 0 && eq + 1 < s.size(), "serve: -m '{}': expected NAME=DIR or DIR", s);
    return {s.substr(0, eq), s.substr(eq + 1)};
  }
  std::string dir = s;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  const auto slash = dir.rfind('/');
  return {slash == std::string::npos ? dir : dir.substr(slash + 1), s};
}

std::string read_key(const std::string& file) {
  std::string key = io::read_file(file);
  while (!key.empty() && (key.back() == '\n' || key.back() == '\r' || key.back() == ' '))
    key.pop_back();
  ATTEND_CHECK(!key.empty(), "serve: --api-key-file {}: the file is empty", file);
  ATTEND_CHECK(key.find_first_of("\r\n") == std::string::npos,
               "serve: --api-key-file {}: the key must be one line", file);
  return key;
}

int serve_command(ServeArgs a) {
  apply_threads(a.threads);
  if (!a.api_key_file.empty()) a.server.api_key = read_key(a.api_key_file);
  // Signals go to one waiting thread (blocked here, before any thread starts, so every thread
  // inherits the mask).
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  // Translation, language and embedding models, each loaded by its family's loader.
  std::vector<std::unique_ptr<models::LoadedModel>> translators;
  std::vector<std::unique_ptr<models::LoadedLanguageModel>> lms;
  std::vector<std::unique_ptr<models::LoadedMaskedModel>> encoders;
  std::vector<serve::ModelEntry> entries;
  for (const std::string& flag : a.models) {
    const auto [name, dir] = model_flag(flag);
    try {
      const nn::Arch arch = models::model_arch(dir);
      if (arch == nn::Arch::kDecoderOnly) {
        auto& m = lms.emplace_back(
            std::make_unique<models::LoadedLanguageModel>(models::load_language_model_dir(dir)));
        models::set_precision(*m->model, m->dir, a.precision);
        entries.push_back({name, nullptr, &m->tokenizer, m->dir, m->model.get()});
      } else if (arch == nn::Arch::kEncoderOnly) {
        auto& m = encoders.emplace_back(
            std::make_unique<models::LoadedMaskedModel>(models::load_masked_model_dir(dir)));
        models::set_precision(*m->model, m->dir, a.precision);
        entries.push_back({name, nullptr, &m->tokenizer, m->dir, nullptr, m->model.get()});
      } else {
        auto& m = translators.emplace_back(
            std::make_unique<models::LoadedModel>(models::load_model_dir(dir)));
        models::set_precision(*m->model, m->dir, a.precision);
        entries.push_back({name, m->model.get(), &m->tokenizer, m->dir, nullptr});
      }
    } catch (const Error& e) {
      throw Error("serve: model '" + name + "': " + e.what());
    }
  }
  serve::Server server(std::move(entries), a.server);
  std::thread([&server, signals] {
    int got = 0;
    sigwait(&signals, &got);
    std::fprintf(stderr, "serve: %s: finishing the requests being served\n",
                 got == SIGTERM ? "SIGTERM" : "SIGINT");
    server.stop();
  }).detach();
  std::printf("listening on http://%s:%d\n", a.server.host.c_str(), server.port());
  std::fflush(stdout);
  server.run();
  std::fprintf(stderr, "serve: stopped\n");
  return 0;
}

}  // namespace

void add_serve(CLI::App& root, int& exit_code) {
  auto a = std::make_shared<ServeArgs>();
  serve::ServerOptions& o = a->server;
  CLI::App* c = root.add_subcommand(
      "serve", "serve translation, language and embedding models over HTTP, with a web page");
  c->footer(
      "Endpoints: GET / (the web page), POST /v1/translate, POST /v1/completions,\n"
      "POST /v1/embeddings (encoder-only models), GET /v1/models,\n"
      "GET /health, GET /metrics (see docs/serving.md). Requests join the running batch between\n"
      "decoder steps.");
  c->add_option("-m,--model", a->models,
                "a model, checkpoint or run directory, optionally named (NAME=DIR; default name:\n"
                "the directory's name); repeat for more models (translation, language or\n"
                "encoder-only models;\n"
                "the first of each kind answers requests that name no model)")
      ->required()
      ->option_text("[NAME=]DIR");
  c->add_option("--host", o.host, "address to listen on")->capture_default_str();
  c->add_option("--port", o.port, "TCP port (0: any free port)")
      ->check(integer_in(0, 65535))
      ->capture_default_str();
  c->add_option("--max-batch-tokens", o.scheduling.max_batch_tokens,
                "source subwords decoding at once, per model (language models: cache positions,\n"
                "prompt + max_tokens per prompt, beam row or draw)")
      ->check(integer_in(1, INT64_MAX))
      ->capture_default_str();
  c->add_option(
       "--max-queue", o.scheduling.max_queue,
       "sentences (language models: prompts, times n when drawing) waiting per model; more: 503 "
       "with Retry-After")
      ->check(integer_in(1, INT64_MAX))
      ->capture_default_str();
  c->add_option("--max-body-bytes", o.limits.max_body_bytes, "larger request bodies: 413")
      ->check(integer_in(1, INT64_MAX))
      ->capture_default_str();
  c->add_option("--max-sentences", o.limits.max_sentences, "texts per request")
      ->check(integer_in(1, INT64_MAX))
      ->capture_default_str();
  c->add_option("--max-sentence-tokens", o.max_sentence_tokens,
                "subwords per text (default: the model's max_positions)")
      ->check(integer_in(1, INT64_MAX));
  c->add_option("--max-connections", o.max_connections, "open connections; more: 503")
      ->check(integer_in(1, 100000))
      ->capture_default_str();
  c->add_option("--precision", a->precision,
                "run every model in fp32, bf16 (weights stored in bf16; needs AVX-512) or int8 "
                "(linear layers quantized per row at load). Default: as each model is stored")
      ->check(CLI::IsMember({"fp32", "bf16", "int8"}));
  c->add_option("--timeout", o.timeout_s, "seconds a request may take; more: 504")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  c->add_option("--api-key-file", a->api_key_file,
                "requests must carry the key in this file (Authorization: Bearer KEY)")
      ->check(CLI::ExistingFile)
      ->option_text("FILE");
  add_threads_flag(*c, a->threads);
  c->callback([a, &exit_code] { exit_code = serve_command(*a); });
}

}  // namespace attend::apps
