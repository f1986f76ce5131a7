// The server's transport (see transport.h). Blocking Beast reads and writes, each bounded by a
// deadline: the socket is polled before every read_some and write_some (asio's synchronous
// calls have no timeouts of their own), so a slow or silent client costs one thread until its
// deadline and never a stuck server.
#include "serve/transport.h"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <thread>
#include <utility>

#include "core/error.h"
#include "serve/api.h"

namespace attend::serve {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using boost::system::error_code;

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
  std::size_t write_some(const Buffers& buffers, error_code& ec) {
    if (!wait(POLLOUT, ec)) return 0;
    return socket_.write_some(buffers, ec);
  }
  // The throwing forms of SyncReadStream/SyncWriteStream.
  template <class Buffers>
  std::size_t read_some(const Buffers& buffers) {
    return or_throw([&](error_code& ec) { return read_some(buffers, ec); });
  }
  template <class Buffers>
  std::size_t write_some(const Buffers& buffers) {
    return or_throw([&](error_code& ec) { return write_some(buffers, ec); });
  }

 private:
  template <class F>
  static std::size_t or_throw(F&& f) {
    error_code ec;
    const std::size_t n = f(ec);
    if (ec) throw boost::system::system_error(ec);
    return n;
  }
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

}  // namespace

HttpResponse reply(unsigned version, bool keep_alive, http::status status, std::string body,
                   const char* content_type) {
  HttpResponse res{status, version};
  res.set(http::field::server, "attend");
  res.set(http::field::content_type, content_type);
  res.keep_alive(keep_alive);
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

namespace {

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

// The Client of one request on a connection: the peer polled on its socket, a streamed reply
// written in chunks through the connection's TimedStream.
class BeastClient : public Client {
 public:
  BeastClient(tcp::socket& socket, TimedStream& stream) : socket_(socket), stream_(stream) {}
  bool gone() override { return peer_gone(socket_.native_handle()); }
  bool start_events(unsigned version, double timeout_s) override {
    http::response<http::empty_body> head{http::status::ok, version};
    head.set(http::field::server, "attend");
    head.set(http::field::content_type, "text/event-stream");
    head.set(http::field::cache_control, "no-cache");
    head.chunked(true);
    head.keep_alive(false);
    http::response_serializer<http::empty_body> serializer{head};
    stream_.expire_at(Clock::now() + seconds(timeout_s), false);
    http::write_header(stream_, serializer, ec_);
    return !ec_;
  }
  bool send(const std::string& data) override {
    if (!ec_) asio::write(stream_, http::make_chunk(asio::buffer(data)), ec_);
    return !ec_;
  }
  void finish() override {
    if (!ec_) asio::write(stream_, http::make_chunk_last(), ec_);
  }

 private:
  tcp::socket& socket_;
  TimedStream& stream_;
  error_code ec_;
};

}  // namespace

struct Transport::Impl {
  TransportOptions options;
  Handler handle;
  Counter count;
  asio::io_context io;
  tcp::acceptor acceptor{io};
  const std::atomic<bool>* stopping = nullptr;
  mutable std::mutex connection_mutex;
  std::condition_variable connection_cv;
  int64_t connections = 0;

  void serve_connection(tcp::socket& socket);
};

Transport::Transport(const TransportOptions& options, Handler handle, Counter count)
    : impl_(std::make_unique<Impl>()) {
  Impl& I = *impl_;
  I.options = options;
  I.handle = std::move(handle);
  I.count = std::move(count);
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
}

Transport::~Transport() = default;

int64_t Transport::connections() const {
  std::lock_guard lock(impl_->connection_mutex);
  return impl_->connections;
}

void Transport::Impl::serve_connection(tcp::socket& socket) {
  TimedStream stream(socket, *stopping);
  beast::flat_buffer buffer;
  for (;;) {
    stream.expire_at(Clock::now() + seconds(options.idle_timeout_s), true);
    http::request_parser<http::string_body> parser;
    parser.header_limit(16 * 1024);
    parser.body_limit(static_cast<std::uint64_t>(options.max_body_bytes));
    error_code ec;
    http::read_header(stream, buffer, parser, ec);
    if (!ec && parser.get()[http::field::expect] == "100-continue" &&
        !(parser.content_length() &&
          *parser.content_length() > static_cast<std::uint64_t>(options.max_body_bytes))) {
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
                             std::to_string(options.max_body_bytes) + " bytes");
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
    BeastClient client(socket, stream);
    try {
      res = handle(req, client, endpoint);
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
    if (*stopping) res->keep_alive(false);
    stream.expire_at(Clock::now() + seconds(options.timeout_s), false);
    http::write(stream, *res, ec);
    if (ec) return;
    if (!res->keep_alive()) {
      socket.shutdown(tcp::socket::shutdown_send, ec);
      return;
    }
  }
}

void Transport::run(const std::atomic<bool>& stopping) {
  Impl& I = *impl_;
  I.stopping = &stopping;
  while (!stopping) {
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
