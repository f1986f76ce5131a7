// The server's transport: HTTP/1.1 on Boost.Beast over blocking sockets, one thread per
// connection (keep-alive; more than max_connections at once: 503), every read and write bounded
// by a deadline (a slow or silent client costs one thread until then, never the server), 408
// for a request not sent in time, 413 for a body over the limit, 400 for a malformed request.
// Each parsed request goes to the handler with a Client: what a handler sees of its peer --
// whether it left, and a way to stream a reply -- and never the socket.
#pragma once
#include <atomic>
#include <boost/beast/http.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace attend::serve {

using HttpRequest = boost::beast::http::request<boost::beast::http::string_body>;
using HttpResponse = boost::beast::http::response<boost::beast::http::string_body>;

/// `s` seconds as a steady-clock duration (the server's deadlines).
inline std::chrono::steady_clock::duration seconds(double s) {
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(s));
}

/// A reply with the server's headers: `body` of `content_type`, Content-Length set.
HttpResponse reply(unsigned version, bool keep_alive, boost::beast::http::status status,
                   std::string body, const char* content_type = "application/json");

/// What a handler sees of its client.
class Client {
 public:
  virtual ~Client() = default;
  /// Whether the client has gone (closed or reset its end); bytes of a pipelined request waiting
  /// to be read do not count.
  virtual bool gone() = 0;
  /// Starts a streamed `text/event-stream` reply (chunked; the connection closes after it),
  /// writable until `timeout_s` from now.
  virtual bool start_events(unsigned version, double timeout_s) = 0;
  /// Sends one chunk of the streamed reply; false once sending failed (the client left).
  virtual bool send(const std::string& data) = 0;
  /// Ends the streamed reply.
  virtual void finish() = 0;
};

struct TransportOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                   // 0: any free port
  int64_t max_connections = 256;     // more at once: 503
  double timeout_s = 60;             // reading a request's body, writing its reply
  double idle_timeout_s = 30;        // a keep-alive connection without a request is closed
  int64_t max_body_bytes = 1 << 20;  // larger bodies: 413
};

/// Answers one request (nullopt: it was streamed through the Client, or the client left) and
/// names the endpoint it counted under.
using Handler =
    std::function<std::optional<HttpResponse>(const HttpRequest&, Client&, std::string& endpoint)>;
/// Counts a request answered by the transport itself (408, 413, 400) or by the handler, with its
/// latency for the timed endpoints' successful replies.
using Counter =
    std::function<void(const std::string& endpoint, int status, std::optional<double> latency_s)>;

class Transport {
 public:
  /// Binds the listening socket (a port in use, a bad host: attend::Error naming them).
  Transport(const TransportOptions& options, Handler handle, Counter count);
  ~Transport();
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  int port() const { return port_; }
  /// Accepts and serves connections until `stopping`; then closes the listening socket and idle
  /// connections, lets requests being served finish, and returns once every connection closed.
  void run(const std::atomic<bool>& stopping);
  int64_t connections() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

}  // namespace attend::serve
