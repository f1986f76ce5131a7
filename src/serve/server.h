// `attend serve`'s HTTP server: Boost.Beast over blocking sockets, one thread per connection
// (HTTP/1.1 with keep-alive), one continuous-batching scheduler per model (scheduler.h).
//
//   GET  /               the web page (src/serve/web/index.html, compiled in; no key needed)
//   GET  /health         {"status": "ok"} (no key needed; 503 "stopping" while draining)
//   GET  /v1/models      the models served
//   POST /v1/translate   translation models, see api.h
//   POST /v1/completions language models; "stream": true sends server-sent events
//   GET  /metrics        Prometheus text: requests by endpoint and status, latency histogram,
//                        queue depth, batch rows and sentences, decoder steps, target tokens
//
// Every error is {"error": {"code", "message"}}: 400 bad request, 401 missing or wrong key,
// 404 unknown path or model, 405 wrong method, 408 a request not read in time, 413 body too
// large, 503 (with Retry-After) a full queue or too many connections, 504 a request that ran
// past its timeout (it is cancelled), 500 a decoding failure. A client that disconnects while
// its request decodes is noticed between steps and its sentences leave the batch.
//
// stop() (SIGTERM in `attend serve`): the listening socket closes, idle connections close,
// requests being served finish and get their replies, then run() returns.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "data/tokenizer.h"
#include "nn/transformer.h"
#include "serve/api.h"
#include "serve/scheduler.h"

namespace attend::serve {

/// One model the server runs: a translation model (`model`) or a decoder-only language model
/// (`lm`), with its tokenizer (all only read; they outlive the server).
struct ModelEntry {
  std::string name;  // what requests name in "model"
  const nn::EncoderDecoder* model = nullptr;
  const data::Tokenizer* tokenizer = nullptr;
  std::string dir;                           // where it was loaded from (shown by /v1/models)
  const nn::DecoderOnly* lm = nullptr;       // set instead of `model` for a language model
  const nn::EncoderOnly* encoder = nullptr;  // set instead of `model` for embeddings
  /// Whichever of the three is set.
  const nn::Model& any_model() const {
    return lm        ? static_cast<const nn::Model&>(*lm)
           : encoder ? static_cast<const nn::Model&>(*encoder)
                     : static_cast<const nn::Model&>(*model);
  }
};

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;  // 0: any free port (port() tells which)
  Limits limits;
  SchedulerOptions scheduling;
  int64_t max_sentence_tokens = 0;  // subwords per text, end token included (0: max_positions)
  int64_t max_connections = 256;    // more at once: 503
  double timeout_s = 60;            // per request, from its last byte read to its reply: 504
  double idle_timeout_s = 30;       // a keep-alive connection without a request is closed
  std::string api_key;              // non-empty: every /v1 and /metrics request must carry it
};

class Server {
 public:
  /// Binds the listening socket (a port in use, a bad host: attend::Error naming them) and
  /// starts one scheduler per model.
  Server(std::vector<ModelEntry> models, ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  int port() const { return port_; }
  /// Accepts and serves connections until stop(); returns once every connection has closed.
  void run();
  /// Asks run() to finish (callable from any thread, more than once).
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

}  // namespace attend::serve
