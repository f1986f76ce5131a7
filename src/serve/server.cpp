// The HTTP server (see server.h). Blocking Beast reads and writes, each bounded by a deadline:
// the socket is polled before every read_some and write_some (asio's synchronous calls have no
// timeouts of their own), so a slow or silent client costs one thread until its deadline and
// never a stuck server.
#include "serve/server.h"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <deque>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>
#include <utility>

#include "core/error.h"
#include "decode/generator.h"
#include "decode/translator.h"
#include "serve/page.h"

namespace attend::serve {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

// The precision a served model runs in (how its weights are stored: nn::Module::store_weights).
std::string precision_name(const nn::Module& m) {
  switch (m.weight_dtype()) {
    case DType::kBF16:
      return "bf16";
    case DType::kI8:
      return "int8";
    default:
      return "fp32";
  }
}
using boost::system::error_code;
using json = nlohmann::json;
using HttpRequest = http::request<http::string_body>;
using HttpResponse = http::response<http::string_body>;

Clock::duration seconds(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

// A socket whose blocking reads and writes give up at a deadline (asio::error::timed_out), or,
// while it waits for a new request on a kept-alive connection, when the server stops.
class TimedStream {
 public:
  TimedStream(tcp::socket& socket, const std::atomic<bool>& stopping)
      : socket_(socket), stopping_(stopping) {}
  /// The deadline of what follows; `idle`: no byte of the next request has arrived yet.
  void expire_at(Clock::time_point deadline, bool idle) {
    deadline_ = deadline;
    idle_ = idle;
  }
  bool idle() const { return idle_; }

  template <class Buffers>
  std::size_t read_some(const Buffers& buffers, error_code& ec) {
    if (!wait(POLLIN, ec)) return 0;
    const std::size_t n = socket_.read_some(buffers, ec);
    if (n > 0) idle_ = false;
    return n;
  }
  template <class Buffers>
  std::size_t read_some(const Buffers& buffers) {
    error_code ec;
    const std::size_t n = read_some(buffers, ec);
    if (ec) throw boost::system::system_error(ec);
    return n;
  }
  template <class Buffers>
  std::size_t write_some(const Buffers& buffers, error_code& ec) {
    if (!wait(POLLOUT, ec)) return 0;
    return socket_.write_some(buffers, ec);
  }
  template <class Buffers>
  std::size_t write_some(const Buffers& buffers) {
    error_code ec;
    const std::size_t n = write_some(buffers, ec);
    if (ec) throw boost::system::system_error(ec);
    return n;
  }

 private:
  bool wait(short events, error_code& ec) {
    for (;;) {
      const auto now = Clock::now();
      if (now >= deadline_) {
        ec = asio::error::timed_out;
        return false;
      }
      if (idle_ && stopping_.load()) {
        ec = asio::error::operation_aborted;
        return false;
      }
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - now).count() + 1;
      pollfd p{socket_.native_handle(), events, 0};
      const int r = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left, 100)));
      if (r > 0) return true;
      if (r < 0 && errno != EINTR) {
        ec = error_code(errno, boost::system::system_category());
        return false;
      }
    }
  }

  tcp::socket& socket_;
  const std::atomic<bool>& stopping_;
  Clock::time_point deadline_ = Clock::now();
  bool idle_ = true;
};

// Whether the client of `fd` has gone (closed or reset its end) while its request decodes.
// Bytes waiting to be read (a pipelined request) do not count as gone.
bool peer_gone(int fd) {
  pollfd p{fd, static_cast<short>(POLLIN | POLLRDHUP), 0};
  if (::poll(&p, 1, 0) <= 0) return false;
  if (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) return true;
  char c;
  const ssize_t n = ::recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
  return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

AttentionOut attention_of(const nn::EncoderDecoder& model, const data::Tokenizer& tok,
                          const std::vector<int32_t>& source, const std::vector<int32_t>& target,
                          const std::vector<std::string>& target_pieces) {
  AttentionOut a;
  for (const int32_t id : source) a.source.push_back(tok.piece(id));
  const size_t S = source.size();
  const std::vector<Tensor> layers = decode::cross_attention(model, source, target);  // [H, T, S]
  const auto T = static_cast<size_t>(layers.front().size(1));
  a.target = target_pieces;
  if (T > target.size()) a.target.push_back("</s>");
  for (const Tensor& layer : layers) {
    const std::vector<float> w = layer.to_vector<float>();
    auto& heads = a.weights.emplace_back(static_cast<size_t>(layer.size(0)));
    for (size_t h = 0; h < heads.size(); ++h)
      for (size_t t = 0; t < T; ++t)
        heads[h].emplace_back(w.begin() + static_cast<std::ptrdiff_t>((h * T + t) * S),
                              w.begin() + static_cast<std::ptrdiff_t>((h * T + t + 1) * S));
  }
  return a;
}

std::string prometheus_label(const std::string& s) {
  std::string out;
  for (const char c : s) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

// Upper bounds of the latency histogram's buckets, in seconds.
constexpr std::array<double, 13> kLatencyBounds = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                                   1,     2.5,  5,     10,   30,  60};

struct Served {
  ModelEntry entry;
  std::unique_ptr<Scheduler> scheduler;   // continuous batching, either family
  std::unique_ptr<decode::Generator> lm;  // language models: prompts to ids, the context
  int64_t max_tokens = 0;
  const char* task() const { return lm ? "generation" : "translation"; }
};

}  // namespace

struct Server::Impl {
  std::vector<Served> models;
  ServerOptions options;
  asio::io_context io;
  tcp::acceptor acceptor{io};
  std::atomic<bool> stopping{false};

  std::mutex connection_mutex;
  std::condition_variable connection_cv;
  int64_t connections = 0;

  // Metrics (guarded by metrics_mutex).
  std::mutex metrics_mutex;
  std::map<std::pair<std::string, int>, int64_t> requests;  // (endpoint, status) -> count
  std::array<int64_t, kLatencyBounds.size() + 1> latency_buckets{};
  double latency_sum = 0;
  int64_t latency_count = 0;
  int64_t cancelled = 0;
  std::deque<std::pair<Clock::time_point, int64_t>> token_marks;  // (time, target tokens so far)
  int64_t target_tokens = 0;
  int64_t source_tokens = 0;

  void serve_connection(tcp::socket& socket);
  std::optional<HttpResponse> handle(const HttpRequest& req, TimedStream& stream, int fd,
                                     std::string& endpoint);
  std::optional<HttpResponse> translate(const HttpRequest& req, int fd);
  std::optional<HttpResponse> complete(const HttpRequest& req, TimedStream& stream, int fd);
  // How waiting for a request's ticket ended.
  enum class Waited { kDone, kGone, kTimeout };
  using Pieces = std::vector<std::pair<size_t, std::string>>;
  /// Waits for `ticket` while its client stays connected and the server's time allows, handing
  /// each batch of pieces to `on_pieces` when given (it returns false when sending failed).
  /// A client that left (counted) or the deadline cancels the request.
  Waited wait_for(Scheduler& scheduler, const std::shared_ptr<Ticket>& ticket,
                  Clock::time_point deadline, int fd,
                  const std::function<bool(const Pieces&)>& on_pieces = {});
  Served& find_model(const std::string& name, const char* task);
  HttpResponse models_reply(const HttpRequest& req) const;
  HttpResponse metrics_reply(const HttpRequest& req);
  void count(const std::string& endpoint, int status, std::optional<double> latency_s);
  void check_key(const HttpRequest& req) const;
};

namespace {

HttpResponse reply(unsigned version, bool keep_alive, http::status status, std::string body,
                   const char* content_type = "application/json") {
  HttpResponse res{status, version};
  res.set(http::field::server, "attend");
  res.set(http::field::content_type, content_type);
  res.keep_alive(keep_alive);
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

HttpResponse error_reply(unsigned version, bool keep_alive, const ApiError& e) {
  HttpResponse res = reply(version, keep_alive, static_cast<http::status>(e.status()),
                           error_body(e.code(), e.what()));
  if (e.status() == 503) res.set(http::field::retry_after, "1");
  if (e.status() == 401) res.set(http::field::www_authenticate, "Bearer");
  return res;
}

// Sends `res` and closes after the client has had time to read it (closing at once with unread
// request bytes in the socket would reset the connection and lose the reply).
void reply_and_close(tcp::socket& socket, TimedStream& stream, HttpResponse res) {
  res.keep_alive(false);
  error_code ec;
  stream.expire_at(Clock::now() + std::chrono::seconds(5), false);
  http::write(stream, res, ec);
  socket.shutdown(tcp::socket::shutdown_send, ec);
  stream.expire_at(Clock::now() + std::chrono::seconds(1), false);
  std::array<char, 4096> sink;
  while (!ec) stream.read_some(asio::buffer(sink), ec);
}

const std::map<std::string, http::verb>& routes() {
  static const std::map<std::string, http::verb> r = {{"/", http::verb::get},
                                                      {"/health", http::verb::get},
                                                      {"/metrics", http::verb::get},
                                                      {"/v1/models", http::verb::get},
                                                      {"/v1/translate", http::verb::post},
                                                      {"/v1/completions", http::verb::post}};
  return r;
}

}  // namespace

void Server::Impl::count(const std::string& endpoint, int status, std::optional<double> latency_s) {
  std::lock_guard lock(metrics_mutex);
  ++requests[{endpoint, status}];
  if (latency_s) {
    const auto b = static_cast<size_t>(
        std::lower_bound(kLatencyBounds.begin(), kLatencyBounds.end(), *latency_s) -
        kLatencyBounds.begin());
    ++latency_buckets[b];
    latency_sum += *latency_s;
    ++latency_count;
  }
}

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

HttpResponse Server::Impl::models_reply(const HttpRequest& req) const {
  json list = json::array();
  for (const Served& m : models) {
    const nn::TransformerConfig& c = m.lm ? m.entry.lm->config() : m.entry.model->config();
    json item = {
        {"id", m.entry.name},
        {"object", "model"},
        {"task", m.task()},
        {"dir", m.entry.dir},
        {"d_model", c.d_model},
        {"heads", c.heads},
        {"decoder_layers", c.decoder_layers},
        {"vocab", c.tgt_vocab},
        {"precision", m.lm ? precision_name(*m.entry.lm) : precision_name(*m.entry.model)}};
    if (m.lm) {
      item["context"] = c.max_positions;
    } else {
      item["encoder_layers"] = c.encoder_layers;
      item["max_sentence_tokens"] = m.max_tokens;
    }
    list.push_back(std::move(item));
  }
  return reply(req.version(), req.keep_alive(), http::status::ok,
               json{{"object", "list"}, {"data", std::move(list)}}.dump(
                   -1, ' ', false, json::error_handler_t::replace));
}

HttpResponse Server::Impl::metrics_reply(const HttpRequest& req) {
  std::string out;
  auto line = [&](const std::string& s) { out += s + "\n"; };
  auto num = [](double x) {
    char b[64];
    std::snprintf(b, sizeof b, "%.17g", x);
    return std::string(b);
  };
  {
    std::lock_guard lock(metrics_mutex);
    line("# HELP attend_requests_total HTTP requests answered, by endpoint and status.");
    line("# TYPE attend_requests_total counter");
    for (const auto& [key, n] : requests)
      line("attend_requests_total{endpoint=\"" + prometheus_label(key.first) + "\",status=\"" +
           std::to_string(key.second) + "\"} " + std::to_string(n));
    line(
        "# HELP attend_translate_seconds Time from a translate or completions request's last "
        "byte to its (last) reply byte.");
    line("# TYPE attend_translate_seconds histogram");
    int64_t cumulative = 0;
    for (size_t b = 0; b < kLatencyBounds.size(); ++b) {
      cumulative += latency_buckets[b];
      line("attend_translate_seconds_bucket{le=\"" + num(kLatencyBounds[b]) + "\"} " +
           std::to_string(cumulative));
    }
    cumulative += latency_buckets.back();
    line("attend_translate_seconds_bucket{le=\"+Inf\"} " + std::to_string(cumulative));
    line("attend_translate_seconds_sum " + num(latency_sum));
    line("attend_translate_seconds_count " + std::to_string(latency_count));
    line("# HELP attend_cancelled_requests_total Requests whose client left before the reply.");
    line("# TYPE attend_cancelled_requests_total counter");
    line("attend_cancelled_requests_total " + std::to_string(cancelled));
    line("# HELP attend_source_tokens_total Source subwords of answered translate requests.");
    line("# TYPE attend_source_tokens_total counter");
    line("attend_source_tokens_total " + std::to_string(source_tokens));
    line("# HELP attend_target_tokens_total Target subwords returned.");
    line("# TYPE attend_target_tokens_total counter");
    line("attend_target_tokens_total " + std::to_string(target_tokens));
    // Over the replies of the last 10 seconds.
    double rate = 0;
    const auto now = Clock::now();
    while (!token_marks.empty() && now - token_marks.front().first > std::chrono::seconds(10))
      token_marks.pop_front();
    if (!token_marks.empty()) {
      const double span = std::chrono::duration<double>(now - token_marks.front().first).count();
      if (span > 0.5) rate = static_cast<double>(target_tokens - token_marks.front().second) / span;
    }
    line(
        "# HELP attend_target_tokens_per_second Target subwords returned per second over the "
        "last 10 s.");
    line("# TYPE attend_target_tokens_per_second gauge");
    line("attend_target_tokens_per_second " + num(rate));
  }
  {
    std::lock_guard lock(connection_mutex);
    line("# HELP attend_connections Open client connections.");
    line("# TYPE attend_connections gauge");
    line("attend_connections " + std::to_string(connections));
  }
  const char* gauges[][2] = {
      {"attend_queue_sentences", "Sentences waiting to join the running batch."},
      {"attend_batch_sentences", "Sentences in the running batch."},
      {"attend_batch_rows", "Decoder rows (live hypotheses) of the last step."},
      {"attend_decoder_steps_total", "Decoder steps run."}};
  for (int g = 0; g < 4; ++g) {
    line(std::string("# HELP ") + gauges[g][0] + " " + gauges[g][1]);
    line(std::string("# TYPE ") + gauges[g][0] + (g == 3 ? " counter" : " gauge"));
    for (const Served& m : models) {
      if (m.lm) continue;
      const SchedulerStats s = m.scheduler->stats();
      const int64_t v = g == 0 ? s.queued : g == 1 ? s.decoding : g == 2 ? s.rows : s.steps;
      line(std::string(gauges[g][0]) + "{model=\"" + prometheus_label(m.entry.name) + "\"} " +
           std::to_string(v));
    }
  }
  const char* lm_gauges[][3] = {
      {"attend_lm_queue_prompts", "gauge", "Prompts (and draws) waiting to join."},
      {"attend_lm_batch_prompts", "gauge", "Prompts in the running generation batch."},
      {"attend_lm_tokens_total", "counter", "Tokens generated."},
      {"attend_lm_steps_total", "counter", "Generation steps run."}};
  for (int g = 0; g < 4; ++g) {
    line(std::string("# HELP ") + lm_gauges[g][0] + " " + lm_gauges[g][2]);
    line(std::string("# TYPE ") + lm_gauges[g][0] + " " + lm_gauges[g][1]);
    for (const Served& m : models) {
      if (!m.lm) continue;
      const SchedulerStats s = m.scheduler->stats();
      const int64_t v = g == 0   ? s.queued
                        : g == 1 ? s.decoding
                        : g == 2 ? s.target_tokens
                                 : s.steps;
      line(std::string(lm_gauges[g][0]) + "{model=\"" + prometheus_label(m.entry.name) + "\"} " +
           std::to_string(v));
    }
  }
  return reply(req.version(), req.keep_alive(), http::status::ok, std::move(out),
               "text/plain; version=0.0.4");
}

Served& Server::Impl::find_model(const std::string& name, const char* task) {
  const char* endpoint = std::string(task) == "translation" ? "/v1/translate" : "/v1/completions";
  for (Served& s : models)
    if (name.empty() ? std::string(s.task()) == task : s.entry.name == name) {
      if (std::string(s.task()) != task)
        throw ApiError(400, "wrong_model",
                       "model '" + name + "' is a " + s.task() + " model; " + endpoint + " takes " +
                           task + " models");
      return s;
    }
  std::string names;
  for (const Served& s : models)
    if (std::string(s.task()) == task) names += (names.empty() ? "'" : ", '") + s.entry.name + "'";
  if (name.empty())
    throw ApiError(404, "unknown_model", std::string("this server has no ") + task + " model");
  throw ApiError(
      404, "unknown_model",
      "model '" + name + "' is not served" +
          (names.empty() ? std::string() : " (" + std::string(task) + ": " + names + ")"));
}

Server::Impl::Waited Server::Impl::wait_for(Scheduler& scheduler,
                                            const std::shared_ptr<Ticket>& ticket,
                                            Clock::time_point deadline, int fd,
                                            const std::function<bool(const Pieces&)>& on_pieces) {
  for (;;) {
    Pieces pieces;
    const bool done = ticket->wait(std::min(deadline, Clock::now() + std::chrono::milliseconds(20)),
                                   on_pieces ? &pieces : nullptr);
    const bool sent = pieces.empty() || on_pieces(pieces);
    if (done && sent) return Waited::kDone;
    if (!sent || peer_gone(fd)) {
      scheduler.cancel(ticket);
      std::lock_guard lock(metrics_mutex);
      ++cancelled;
      return Waited::kGone;
    }
    if (Clock::now() >= deadline) {
      scheduler.cancel(ticket);
      return Waited::kTimeout;
    }
  }
}

std::optional<HttpResponse> Server::Impl::complete(const HttpRequest& req, TimedStream& stream,
                                                   int fd) {
  const auto start = Clock::now();
  CompletionRequest r = parse_completion(req.body(), options.limits);
  Served& m = find_model(r.model, "generation");
  const decode::Generator& gen = *m.lm;
  const int64_t context = gen.context();
  // Entries: with a beam one per prompt (its n best are the choices), else n draws per prompt,
  // draw j of prompt i from stream i * n + j; choice i * n + k belongs to prompt i.
  const auto n = static_cast<size_t>(r.generate.n);
  const bool beam = r.generate.beam > 1;
  const decode::SearchOptions search = r.generate.search();
  std::vector<decode::Request> entries;
  std::vector<int64_t> prompt_tokens;
  for (size_t i = 0; i < r.prompts.size(); ++i) {
    const std::string name = r.prompts.size() > 1 ? "prompt[" + std::to_string(i) + "]" : "prompt";
    std::vector<int32_t> ids;
    try {
      ids = gen.prompt_ids(r.prompts[i], name);
    } catch (const Error& e) {
      throw ApiError(400, "bad_request", e.what());
    }
    if (static_cast<int64_t>(ids.size()) >= context)
      throw ApiError(400, "too_long",
                     name + ": " + std::to_string(ids.size()) + " tokens; the model's context of " +
                         std::to_string(context) + " leaves no room to generate");
    prompt_tokens.push_back(static_cast<int64_t>(ids.size()));
    for (size_t j = 0; j < (beam ? 1 : n); ++j) entries.push_back({ids, search, i * n + j, 0});
  }
  const std::shared_ptr<Ticket> ticket = m.scheduler->submit(std::move(entries), r.stream);
  if (!ticket)
    throw ApiError(503, "overloaded",
                   "model '" + m.entry.name + "' has a full queue; retry after a second");
  const std::string id =
      "cmpl-" + std::to_string(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   Clock::now().time_since_epoch())
                                   .count());
  const int64_t created = std::chrono::duration_cast<std::chrono::seconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count();
  const auto deadline = start + seconds(options.timeout_s);
  // The choices, in order, once the ticket is done.
  auto choices = [&] {
    std::vector<decode::Generation> out;
    for (size_t e = 0; e < ticket->results().size(); ++e) {
      const decode::Result result{0, ticket->results()[e]};
      const int64_t p = prompt_tokens[beam ? e : e / n];
      for (size_t k = 0; k < (beam ? n : 1); ++k)
        out.push_back(decode::to_generation(result, p, m.entry.tokenizer, k));
    }
    return out;
  };
  auto finish_reason = [&](const decode::Generation& g) {
    return g.ended ? std::string("stop") : std::string("length");
  };
  auto count_tokens = [&](const std::vector<decode::Generation>& gens) {
    int64_t total = 0;
    for (const auto& g : gens) total += static_cast<int64_t>(g.tokens.size());
    std::lock_guard lock(metrics_mutex);
    target_tokens += total;
    token_marks.emplace_back(Clock::now(), target_tokens);
    while (token_marks.size() > 4096) token_marks.pop_front();
  };

  if (!r.stream) {
    const Waited w = wait_for(*m.scheduler, ticket, deadline, fd);
    if (w == Waited::kGone) return std::nullopt;
    if (w == Waited::kTimeout)
      throw ApiError(504, "timeout", "the request ran past the server's timeout");
    if (!ticket->failure().empty())
      throw ApiError(500, "generation_failed", "generation failed: " + ticket->failure());
    const std::vector<decode::Generation> gens = choices();
    std::vector<CompletionOut> outs;
    for (size_t k = 0; k < gens.size(); ++k)  // a prompt's tokens count once, with its first choice
      outs.push_back({gens[k].text, finish_reason(gens[k]), k % n == 0 ? gens[k].prompt_tokens : 0,
                      static_cast<int64_t>(gens[k].tokens.size())});
    count_tokens(gens);
    return reply(req.version(), req.keep_alive(), http::status::ok,
                 completion_reply(id, m.entry.name, created, outs));
  }

  // Server-sent events over a chunked reply; the connection closes after the last event.
  http::response<http::empty_body> head{http::status::ok, req.version()};
  head.set(http::field::server, "attend");
  head.set(http::field::content_type, "text/event-stream");
  head.set(http::field::cache_control, "no-cache");
  head.chunked(true);
  head.keep_alive(false);
  http::response_serializer<http::empty_body> serializer{head};
  error_code ec;
  stream.expire_at(Clock::now() + seconds(options.timeout_s), false);
  http::write_header(stream, serializer, ec);
  auto send = [&](const std::string& data) {
    if (!ec) asio::write(stream, http::make_chunk(asio::buffer(data)), ec);
    return !ec;
  };
  std::vector<bool> streamed;  // choices some piece carried
  const Waited w = wait_for(*m.scheduler, ticket, deadline, fd, [&](const Pieces& pieces) {
    for (const auto& [e, text] : pieces) {
      const size_t choice = beam ? e * n : e;  // a beam search streams its best hypothesis
      if (streamed.size() <= choice) streamed.resize(choice + 1, false);
      streamed[choice] = true;
      send(completion_event(id, m.entry.name, created, choice, text, ""));
    }
    return !ec;
  });
  if (w == Waited::kGone) return std::nullopt;
  if (w == Waited::kTimeout) {
    send("data: " + error_body("timeout", "the request ran past the server's timeout") + "\n\n");
  } else if (!ticket->failure().empty()) {
    send("data: " + error_body("generation_failed", "generation failed: " + ticket->failure()) +
         "\n\n");
  } else {
    const std::vector<decode::Generation> gens = choices();
    // The other n - 1 choices of a beam search come whole.
    for (size_t k = 0; k < gens.size(); ++k)
      if ((k >= streamed.size() || !streamed[k]) && !gens[k].text.empty())
        send(completion_event(id, m.entry.name, created, k, gens[k].text, ""));
    for (size_t k = 0; k < gens.size(); ++k)
      send(completion_event(id, m.entry.name, created, k, "", finish_reason(gens[k])));
    count_tokens(gens);
  }
  send("data: [DONE]\n\n");
  if (!ec) asio::write(stream, http::make_chunk_last(), ec);
  count("/v1/completions", 200, std::chrono::duration<double>(Clock::now() - start).count());
  return std::nullopt;
}

std::optional<HttpResponse> Server::Impl::translate(const HttpRequest& req, int fd) {
  const auto start = Clock::now();
  TranslateRequest r = parse_translate(req.body(), options.limits);
  Served* m = &find_model(r.model, "translation");
  if (!r.precision.empty() && r.precision != precision_name(*m->entry.model))
    throw ApiError(400, "bad_request",
                   "precision: model '" + m->entry.name + "' runs in " +
                       precision_name(*m->entry.model) + " (attend serve --precision), got '" +
                       r.precision + "'");
  const nn::TransformerConfig& c = m->entry.model->config();
  const data::Tokenizer& tok = *m->entry.tokenizer;
  std::vector<std::vector<int32_t>> sources;
  int64_t source_tokens = 0;
  for (size_t i = 0; i < r.texts.size(); ++i) {
    std::vector<int32_t> ids = tok.encode(r.texts[i]);
    const int64_t n = c.source_length(static_cast<int64_t>(ids.size()));
    if (n > m->max_tokens)
      throw ApiError(400, "too_long",
                     (r.texts.size() > 1 ? "text[" + std::to_string(i) + "]" : "text") + ": " +
                         std::to_string(n) + " subwords, more than the limit of " +
                         std::to_string(m->max_tokens));
    source_tokens += n;
    sources.push_back(c.source(std::move(ids)));
  }
  std::vector<decode::Request> entries;
  for (size_t i = 0; i < sources.size(); ++i) entries.push_back({sources[i], r.search, i, 0});
  const std::shared_ptr<Ticket> ticket = m->scheduler->submit(std::move(entries));
  if (!ticket)
    throw ApiError(503, "overloaded",
                   "model '" + m->entry.name + "' has a full queue; retry after a second");
  const Waited w = wait_for(*m->scheduler, ticket, start + seconds(options.timeout_s), fd);
  if (w == Waited::kGone) return std::nullopt;
  if (w == Waited::kTimeout) {
    char s[32];
    std::snprintf(s, sizeof s, "%g", options.timeout_s);
    throw ApiError(504, "timeout",
                   std::string("the request ran past the server's timeout of ") + s + " s");
  }
  if (!ticket->failure().empty())
    throw ApiError(500, "decoding_failed", "decoding failed: " + ticket->failure());
  std::vector<std::vector<TranslationOut>> outs;
  int64_t target_tokens = 0;
  for (size_t i = 0; i < ticket->results().size(); ++i) {
    const auto& nbest = ticket->results()[i];
    std::vector<TranslationOut>& list = outs.emplace_back();
    for (const decode::Hypothesis& h : nbest) {
      TranslationOut t{tok.decode(h.tokens), h.score, {}, std::nullopt};
      for (const int32_t id : h.tokens) t.tokens.push_back(tok.piece(id));
      target_tokens += static_cast<int64_t>(h.tokens.size());
      // The best translation's weights, from one teacher-forced pass on this thread (the model
      // is only read); an empty source attends to nothing.
      if (r.attention && list.empty() && !sources[i].empty())
        t.attention = attention_of(*m->entry.model, tok, sources[i], h.tokens, t.tokens);
      list.push_back(std::move(t));
    }
  }
  const double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  {
    std::lock_guard lock(metrics_mutex);
    this->source_tokens += source_tokens;
    this->target_tokens += target_tokens;
    token_marks.emplace_back(Clock::now(), this->target_tokens);
    while (token_marks.size() > 4096) token_marks.pop_front();
  }
  return reply(req.version(), req.keep_alive(), http::status::ok,
               translate_reply(m->entry.name, outs, source_tokens, target_tokens, ms));
}

std::optional<HttpResponse> Server::Impl::handle(const HttpRequest& req, TimedStream& stream,
                                                 int fd, std::string& endpoint) {
  const std::string target(req.target());
  const std::string path = target.substr(0, target.find('?'));
  const auto route = routes().find(path);
  if (route == routes().end()) {
    endpoint = "other";
    throw ApiError(404, "not_found",
                   "no endpoint " + path +
                       " (this server has GET /, GET /health, GET /v1/models, POST "
                       "/v1/translate, POST /v1/completions, GET /metrics)");
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
  if (path == "/v1/models") return models_reply(req);
  if (path == "/metrics") return metrics_reply(req);
  if (path == "/v1/completions") return complete(req, stream, fd);
  return translate(req, fd);
}

void Server::Impl::serve_connection(tcp::socket& socket) {
  TimedStream stream(socket, stopping);
  beast::flat_buffer buffer;
  for (;;) {
    stream.expire_at(Clock::now() + seconds(options.idle_timeout_s), true);
    http::request_parser<http::string_body> parser;
    parser.header_limit(16 * 1024);
    parser.body_limit(static_cast<std::uint64_t>(options.limits.max_body_bytes));
    error_code ec;
    http::read_header(stream, buffer, parser, ec);
    if (!ec && parser.get()[http::field::expect] == "100-continue" &&
        !(parser.content_length() &&
          *parser.content_length() > static_cast<std::uint64_t>(options.limits.max_body_bytes))) {
      static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      asio::write(stream, asio::buffer(kContinue), ec);
    }
    if (!ec) {
      stream.expire_at(Clock::now() + seconds(options.timeout_s), false);
      http::read(stream, buffer, parser, ec);
    }
    if (ec) {
      const unsigned version = 11;
      if (ec == http::error::body_limit) {
        const ApiError e(413, "too_large",
                         "the body is larger than the server's limit of " +
                             std::to_string(options.limits.max_body_bytes) + " bytes");
        count("other", 413, std::nullopt);
        reply_and_close(socket, stream, error_reply(version, false, e));
      } else if (ec == asio::error::timed_out && !stream.idle()) {
        count("other", 408, std::nullopt);
        reply_and_close(socket, stream,
                        error_reply(version, false,
                                    ApiError(408, "timeout", "the request was not sent in time")));
      } else if (ec.category() == http::make_error_code(http::error::bad_target).category() &&
                 ec != http::error::end_of_stream && ec != http::error::partial_message) {
        count("other", 400, std::nullopt);
        reply_and_close(
            socket, stream,
            error_reply(version, false,
                        ApiError(400, "bad_request", "malformed HTTP request: " + ec.message())));
      }
      return;  // otherwise the client left, or the connection idled out or the server stops
    }
    const HttpRequest req = parser.release();
    const auto start = Clock::now();
    std::string endpoint = "other";
    std::optional<HttpResponse> res;
    try {
      res = handle(req, stream, socket.native_handle(), endpoint);
    } catch (const ApiError& e) {
      res = error_reply(req.version(), req.keep_alive(), e);
    } catch (const std::exception& e) {
      res = error_reply(req.version(), req.keep_alive(),
                        ApiError(500, "internal", std::string("internal error: ") + e.what()));
    }
    if (!res) return;  // the client left; nobody reads a reply
    const double latency = std::chrono::duration<double>(Clock::now() - start).count();
    count(endpoint, res->result_int(),
          (endpoint == "/v1/translate" || endpoint == "/v1/completions") && res->result_int() == 200
              ? std::optional(latency)
              : std::nullopt);
    if (stopping) res->keep_alive(false);
    stream.expire_at(Clock::now() + seconds(options.timeout_s), false);
    http::write(stream, *res, ec);
    if (ec) return;
    if (!res->keep_alive()) {
      socket.shutdown(tcp::socket::shutdown_send, ec);
      return;
    }
  }
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

  error_code ec;
  tcp::resolver resolver(I.io);
  const auto found = resolver.resolve(I.options.host, std::to_string(I.options.port),
                                      tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  ATTEND_CHECK(!ec && !found.empty(), "serve: --host '{}' is not an address of this machine: {}",
               I.options.host, ec.message());
  const tcp::endpoint at = found.begin()->endpoint();
  auto fail = [&](const char* what) {
    throw Error(std::string("serve: cannot listen on ") + I.options.host + ":" +
                std::to_string(I.options.port) + " (" + what + "): " + ec.message());
  };
  if (I.acceptor.open(at.protocol(), ec)) fail("open");
  if (I.acceptor.set_option(tcp::acceptor::reuse_address(true), ec)) fail("reuse");
  if (I.acceptor.bind(at, ec)) fail("bind");
  if (I.acceptor.listen(asio::socket_base::max_listen_connections, ec)) fail("listen");
  if (I.acceptor.non_blocking(true, ec)) fail("non-blocking");
  port_ = I.acceptor.local_endpoint().port();

  for (ModelEntry& e : models) {
    ATTEND_CHECK((e.model != nullptr) != (e.lm != nullptr) && e.tokenizer != nullptr,
                 "serve: model '{}' is not loaded", e.name);
    const nn::TransformerConfig& c = e.model ? e.model->config() : e.lm->config();
    ATTEND_CHECK(e.tokenizer->vocab_size() == c.tgt_vocab,
                 "serve: model '{}': the tokenizer has {} pieces but the model's vocabulary is {}",
                 e.name, e.tokenizer->vocab_size(), c.tgt_vocab);
    Served s;
    s.max_tokens = I.options.max_sentence_tokens > 0
                       ? std::min(I.options.max_sentence_tokens, c.max_positions)
                       : c.max_positions;
    if (e.model) {
      s.scheduler = std::make_unique<Scheduler>(*e.model, I.options.scheduling);
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

void Server::run() {
  Impl& I = *impl_;
  while (!I.stopping) {
    pollfd p{I.acceptor.native_handle(), POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    error_code ec;
    auto socket = std::make_unique<tcp::socket>(I.io);
    I.acceptor.accept(*socket, ec);
    if (ec) continue;  // the client left before we took it, or out of descriptors for now
    socket->non_blocking(false, ec);
    socket->set_option(tcp::no_delay(true), ec);
    {
      std::lock_guard lock(I.connection_mutex);
      if (I.connections >= I.options.max_connections) {
        const std::string body =
            error_body("overloaded", "the server has " + std::to_string(I.options.max_connections) +
                                         " connections open; retry after a second");
        const std::string msg =
            "HTTP/1.1 503 Service Unavailable\r\nServer: attend\r\n"
            "Content-Type: application/json\r\nRetry-After: 1\r\n"
            "Connection: close\r\nContent-Length: " +
            std::to_string(body.size()) + "\r\n\r\n" + body;
        asio::write(*socket, asio::buffer(msg), ec);
        socket->shutdown(tcp::socket::shutdown_both, ec);
        continue;
      }
      ++I.connections;
    }
    std::thread([&I, raw = socket.release()] {
      {
        std::unique_ptr<tcp::socket> owned(raw);
        try {
          I.serve_connection(*owned);
        } catch (const std::exception& e) {
          std::fprintf(stderr, "serve: connection dropped: %s\n", e.what());
        }
        error_code ignored;
        owned->close(ignored);
      }
      std::lock_guard lock(I.connection_mutex);
      --I.connections;
      I.connection_cv.notify_all();
    }).detach();
  }
  error_code ec;
  I.acceptor.close(ec);
  std::unique_lock lock(I.connection_mutex);
  I.connection_cv.wait(lock, [&] { return I.connections == 0; });
}

}  // namespace attend::serve
