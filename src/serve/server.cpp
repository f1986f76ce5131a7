// The HTTP server (see server.h): routing and the API key over the transport (transport.h),
// the endpoint handlers (handlers.h) and the metrics (metrics.h).
#include "serve/server.h"

#include <algorithm>
#include <boost/beast/http.hpp>
#include <map>
#include <optional>
#include <utility>

#include "core/error.h"
#include "serve/handlers.h"
#include "serve/metrics.h"
#include "serve/page.h"
#include "serve/transport.h"

namespace attend::serve {
namespace {

namespace http = boost::beast::http;

const std::map<std::string, http::verb>& routes() {
  static const std::map<std::string, http::verb> r = {{"/", http::verb::get},
                                                      {"/health", http::verb::get},
                                                      {"/metrics", http::verb::get},
                                                      {"/v1/models", http::verb::get},
                                                      {"/v1/translate", http::verb::post},
                                                      {"/v1/completions", http::verb::post},
                                                      {"/v1/embeddings", http::verb::post}};
  return r;
}

}  // namespace

struct Server::Impl {
  std::vector<Served> models;
  ServerOptions options;
  std::atomic<bool> stopping{false};
  Metrics metrics;
  Handlers handlers{models, options, metrics};
  std::unique_ptr<Transport> transport;

  /// Routes one request: the page and /health need no key; every other path does when the
  /// server has one.
  std::optional<HttpResponse> handle(const HttpRequest& req, Client& client, std::string& endpoint);
  void check_key(const HttpRequest& req) const;
};

void Server::Impl::check_key(const HttpRequest& req) const {
  std::string given;
  if (const auto a = req.find(http::field::authorization); a != req.end()) {
    const std::string v(a->value());
    if (v.rfind("Bearer ", 0) == 0) given = v.substr(7);
  } else if (const auto k = req.find("X-API-Key"); k != req.end()) {
    given = std::string(k->value());
  }
  if (given.empty())
    throw ApiError(401, "unauthorized",
                   "this server needs an API key (Authorization: Bearer KEY or X-API-Key: KEY)");
  if (!same_key(given, options.api_key)) throw ApiError(401, "unauthorized", "wrong API key");
}

std::optional<HttpResponse> Server::Impl::handle(const HttpRequest& req, Client& client,
                                                 std::string& endpoint) {
  const std::string target(req.target());
  const std::string path = target.substr(0, target.find('?'));
  const auto route = routes().find(path);
  if (route == routes().end()) {
    endpoint = "other";
    throw ApiError(404, "not_found",
                   "no endpoint " + path +
                       " (this server has GET /, GET /health, GET /v1/models, POST "
                       "/v1/translate, POST /v1/completions, POST /v1/embeddings, GET /metrics)");
  }
  endpoint = path;
  if (req.method() != route->second)
    throw ApiError(405, "method_not_allowed",
                   path + " takes " + std::string(http::to_string(route->second)) + ", not " +
                       std::string(req.method_string()));
  if (path == "/health")
    return reply(req.version(), req.keep_alive(),
                 stopping ? http::status::service_unavailable : http::status::ok,
                 stopping ? R"({"status":"stopping"})" : R"({"status":"ok"})");
  if (path == "/") {
    HttpResponse res = reply(req.version(), req.keep_alive(), http::status::ok,
                             std::string(page_html()), "text/html; charset=utf-8");
    // The page is self-contained: nothing may load from anywhere else.
    res.set("Content-Security-Policy",
            "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
            "img-src data:");
    return res;
  }
  if (!options.api_key.empty()) check_key(req);
  if (path == "/v1/models") return handlers.models(req);
  if (path == "/metrics") {
    std::vector<ModelStats> stats;
    for (const Served& m : models)  // embeddings have no scheduler
      if (m.scheduler) stats.push_back({m.entry.name, m.lm != nullptr, m.scheduler->stats()});
    return reply(req.version(), req.keep_alive(), http::status::ok,
                 metrics.exposition(transport ? transport->connections() : 0, stats),
                 "text/plain; version=0.0.4");
  }
  if (path == "/v1/completions") return handlers.complete(req, client);
  if (path == "/v1/embeddings") return handlers.embeddings(req);
  return handlers.translate(req, client);
}

Server::Server(std::vector<ModelEntry> models, ServerOptions options)
    : impl_(std::make_unique<Impl>()) {
  Impl& I = *impl_;
  ATTEND_CHECK(!models.empty(), "serve: no model to serve");
  ATTEND_CHECK(options.port >= 0 && options.port <= 65535, "serve: --port must be 0..65535, got {}",
               options.port);
  ATTEND_CHECK(options.timeout_s > 0, "serve: --timeout must be > 0, got {}", options.timeout_s);
  ATTEND_CHECK(options.max_connections >= 1, "serve: --max-connections must be >= 1, got {}",
               options.max_connections);
  ATTEND_CHECK(options.scheduling.max_batch_tokens >= 1,
               "serve: --max-batch-tokens must be >= 1, got {}",
               options.scheduling.max_batch_tokens);
  ATTEND_CHECK(options.scheduling.max_queue >= 1, "serve: --max-queue must be >= 1, got {}",
               options.scheduling.max_queue);
  for (size_t i = 0; i < models.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      ATTEND_CHECK(models[i].name != models[j].name,
                   "serve: two models are named '{}' (name them with -m NAME=DIR)", models[i].name);
  I.options = std::move(options);
  TransportOptions t;
  t.host = I.options.host;
  t.port = I.options.port;
  t.max_connections = I.options.max_connections;
  t.timeout_s = I.options.timeout_s;
  t.idle_timeout_s = I.options.idle_timeout_s;
  t.max_body_bytes = I.options.limits.max_body_bytes;
  I.transport = std::make_unique<Transport>(
      t,
      [&I](const HttpRequest& req, Client& client, std::string& endpoint) {
        return I.handle(req, client, endpoint);
      },
      [&I](const std::string& endpoint, int status, std::optional<double> latency_s) {
        I.metrics.count(endpoint, status, latency_s);
      });
  port_ = I.transport->port();

  for (ModelEntry& e : models) {
    ATTEND_CHECK((e.model != nullptr) + (e.lm != nullptr) + (e.encoder != nullptr) == 1 &&
                     e.tokenizer != nullptr,
                 "serve: model '{}' is not loaded", e.name);
    const nn::TransformerConfig& c = e.any_model().config();
    const int64_t vocab = e.encoder ? c.src_vocab : c.tgt_vocab;
    ATTEND_CHECK(e.tokenizer->vocab_size() == vocab,
                 "serve: model '{}': the tokenizer has {} pieces but the model's vocabulary is {}",
                 e.name, e.tokenizer->vocab_size(), vocab);
    Served s;
    s.max_tokens = I.options.max_sentence_tokens > 0
                       ? std::min(I.options.max_sentence_tokens, c.max_positions)
                       : c.max_positions;
    if (e.model) {
      s.scheduler = std::make_unique<Scheduler>(*e.model, I.options.scheduling);
    } else if (e.encoder) {
      s.encoder_busy = std::make_unique<std::mutex>();
    } else {
      s.scheduler = std::make_unique<Scheduler>(*e.lm, *e.tokenizer, I.options.scheduling);
      s.lm = std::make_unique<decode::Generator>(*e.lm, *e.tokenizer);
    }
    s.entry = std::move(e);
    I.models.push_back(std::move(s));
  }
}

Server::~Server() {
  stop();
  // Schedulers finish what they hold (nothing once run() has returned) and join.
  impl_->models.clear();
}

void Server::stop() { impl_->stopping = true; }

void Server::run() { impl_->transport->run(impl_->stopping); }

}  // namespace attend::serve
