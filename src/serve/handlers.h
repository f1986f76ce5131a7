// The endpoint handlers of `attend serve`, apart from any socket: /v1/translate,
// /v1/completions, /v1/embeddings and /v1/models. Translation and completions take a parsed
// request (api.h validates its body) and the Client (transport.h) it came from, queue their work
// on the model's scheduler, wait for it while the client stays (Handlers::wait_for, the one wait
// loop of both endpoints), and build the reply, or stream it as server-sent events; embeddings
// are computed on the request's thread.
#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "decode/generator.h"
#include "serve/metrics.h"
#include "serve/scheduler.h"
#include "serve/server.h"
#include "serve/transport.h"

namespace attend::serve {

/// One model being served: its entry, its scheduler and, for a language model, the generator
/// that turns prompts into ids.
struct Served {
  ModelEntry entry;
  std::unique_ptr<Scheduler> scheduler;   // continuous batching: translation and generation
  std::unique_ptr<decode::Generator> lm;  // language models: prompts to ids, the context
  int64_t max_tokens = 0;                 // translation: subwords per text
  // Embeddings run on the request's thread, one request at a time per model (an encoder pass
  // over a few texts needs no batching across requests).
  std::unique_ptr<std::mutex> encoder_busy;
  const char* task() const {
    return lm ? "generation" : entry.encoder ? "embeddings" : "translation";
  }
};

class Handlers {
 public:
  /// All three outlive the handlers.
  Handlers(std::vector<Served>& models, const ServerOptions& options, Metrics& metrics)
      : models_(models), options_(options), metrics_(metrics) {}

  std::optional<HttpResponse> translate(const HttpRequest& req, Client& client);
  /// Streams through `client` when the request asks (then returns nullopt).
  std::optional<HttpResponse> complete(const HttpRequest& req, Client& client);
  HttpResponse models(const HttpRequest& req) const;
  /// POST /v1/embeddings: computed on this thread (Served::encoder_busy).
  HttpResponse embeddings(const HttpRequest& req);

 private:
  using Clock = std::chrono::steady_clock;
  // How waiting for a request's ticket ended.
  enum class Waited { kDone, kGone, kTimeout };
  using Pieces = std::vector<std::pair<size_t, std::string>>;
  /// Waits for `ticket` while its client stays connected and the server's time allows, handing
  /// each batch of pieces to `on_pieces` when given (it returns false when sending failed).
  /// A client that left (counted) or the deadline cancels the request.
  Waited wait_for(Scheduler& scheduler, const std::shared_ptr<Ticket>& ticket,
                  Clock::time_point deadline, Client& client,
                  const std::function<bool(const Pieces&)>& on_pieces = {});
  /// The model a request names (empty: the first of the task), or an ApiError naming why not.
  Served& find_model(const std::string& name, const char* task);

  std::vector<Served>& models_;
  const ServerOptions& options_;
  Metrics& metrics_;
};

/// The precision a served model runs in (how its weights are stored: nn::Module::store_weights).
std::string precision_name(const nn::Module& m);

}  // namespace attend::serve
