// The two HTTP libraries Debian offers, serving the same stand-in for POST /v1/translate, so that
// bench/serve_load can measure them under the server's load (64 keep-alive clients):
//   http_libs --lib beast|httplib [--port 0] [--work-us 2000] [--seconds 40] [--pool N]
// Each request's JSON body is parsed, the handler waits --work-us microseconds (the time a
// translation would take, spent off the CPU so that the libraries' own costs show), and a reply
// shaped like the translate reply is sent. beast: attend's model -- one thread per connection,
// blocking reads and writes, keep-alive (src/serve/server.cpp without the deadlines).
// httplib: cpp-httplib's Server (TCP_NODELAY, as attend sets it) with its default thread pool,
// or --pool N threads. Prints
// "listening on PORT", serves for --seconds, then exits.
#include <httplib.h>

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "args.h"

namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using json = nlohmann::json;

const char* kUsage =
    "usage: http_libs --lib beast|httplib [--port 0] [--work-us 2000] [--seconds 40] [--pool N]\n"
    "  --pool  httplib: worker threads (default: cpp-httplib's, max(8, cores - 1))\n";

// The handler both libraries run: 400 for a body that is not JSON with a "text", else the reply.
std::pair<int, std::string> handle(const std::string& body, int64_t work_us) {
  const json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("text"))
    return {400, R"({"error":{"code":"bad_request","message":"bad body"}})"};
  std::this_thread::sleep_for(std::chrono::microseconds(work_us));
  const json reply = {
      {"model", "stand-in"},
      {"translations", json::array({json::array(
                           {{{"text", j["text"]}, {"score", -1.0}, {"tokens", json::array()}}})})},
      {"usage", {{"source_tokens", 8}, {"target_tokens", 8}}},
      {"time_ms", work_us / 1000.0}};
  return {200, reply.dump()};
}

void serve_beast(int port, int64_t work_us, double seconds) {
  asio::io_context io;
  tcp::acceptor acceptor(io,
                         {asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)});
  std::printf("listening on %d\n", acceptor.local_endpoint().port());
  std::fflush(stdout);
  std::thread([seconds] {
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    std::_Exit(0);
  }).detach();
  for (;;) {
    tcp::socket socket(io);
    acceptor.accept(socket);
    std::thread([s = std::move(socket), work_us]() mutable {
      boost::beast::flat_buffer buffer;
      boost::system::error_code ec;
      for (;;) {
        http::request<http::string_body> req;
        http::read(s, buffer, req, ec);
        if (ec) return;
        const auto [status, body] = handle(req.body(), work_us);
        http::response<http::string_body> res{static_cast<http::status>(status), req.version()};
        res.set(http::field::content_type, "application/json");
        res.keep_alive(req.keep_alive());
        res.body() = body;
        res.prepare_payload();
        http::write(s, res, ec);
        if (ec || !res.keep_alive()) return;
      }
    }).detach();
  }
}

void serve_httplib(int port, int64_t work_us, double seconds, int64_t pool) {
  httplib::Server server;
  server.set_tcp_nodelay(true);  // as attend's server: no Nagle delay on small replies
  if (pool > 0)
    server.new_task_queue = [pool] { return new httplib::ThreadPool(static_cast<size_t>(pool)); };
  server.Post("/v1/translate", [work_us](const httplib::Request& req, httplib::Response& res) {
    const auto [status, body] = handle(req.body, work_us);
    res.status = status;
    res.set_content(body, "application/json");
  });
  const int bound = port == 0 ? server.bind_to_any_port("127.0.0.1") : port;
  if (port != 0 && !server.bind_to_port("127.0.0.1", port)) {
    std::fprintf(stderr, "http_libs: cannot bind port %d\n", port);
    std::exit(1);
  }
  std::printf("listening on %d\n", bound);
  std::fflush(stdout);
  std::thread([&server, seconds] {
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    server.stop();
  }).detach();
  server.listen_after_bind();
}

}  // namespace

int main(int argc, char** argv) {
  const attend::bench::Args args(argc, argv, "http_libs", kUsage,
                                 {"--lib", "--port", "--work-us", "--seconds", "--pool"});
  const std::string lib = args.str("--lib", "");
  const auto port = static_cast<int>(args.integer("--port", 0, 0, 65535));
  const int64_t work_us = args.integer("--work-us", 2000, 0, 10000000);
  const double seconds = args.number("--seconds", 40, 0.1, 86400);
  const int64_t pool = args.integer("--pool", 0, 0, 4096);
  if (lib == "beast")
    serve_beast(port, work_us, seconds);
  else if (lib == "httplib")
    serve_httplib(port, work_us, seconds, pool);
  else
    args.fail("--lib must be beast or httplib, got '" + lib + "'");
  return 0;
}
