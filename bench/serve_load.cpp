// Load on a running `attend serve` (loopback only): N clients, each on its own keep-alive
// connection, send single-sentence translate requests back to back for a fixed time, cycling
// through a file of sentences. With --bad F, a fraction F of the requests are malformed or
// oversized (bad JSON, an unknown field, a beam of 0, a body over the limit, too many texts, a
// wrong method): each must get a 4xx, every other request a 200. With --pid P it samples the
// server's resident memory once a second (the soak test). Prints one JSON object:
// requests, sentences/s and target subwords/s of the good requests, latency percentiles,
// error counts and the resident memory's first and last samples.
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "args.h"

namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

const char* kUsage =
    "usage: serve_load --port P [--host 127.0.0.1] --input FILE [--clients 64] [--seconds 30]\n"
    "                  [--beam 4] [--bad 0] [--max-body 1048576] [--pid PID]\n"
    "  --input     sentences, one per line (each request translates one)\n"
    "  --bad       fraction of requests that are malformed or oversized (must get 4xx)\n"
    "  --max-body  the server's --max-body-bytes (an oversized request is one byte more)\n"
    "  --pid       the server's process id: sample its resident memory every second\n";

// Resident memory of a process in KiB (VmRSS), or -1.
int64_t rss_kib(int64_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
  return -1;
}

struct Tally {
  std::vector<double> latencies_ms;               // good requests answered 200
  int64_t ok = 0, target_tokens = 0, failed = 0;  // good requests: 200 / anything else
  int64_t bad_4xx = 0, bad_other = 0;             // bad requests: 4xx / anything else
  std::vector<std::string> failures;              // the first few, for the report
};

}  // namespace

int main(int argc, char** argv) {
  const attend::bench::Args args(argc, argv, "serve_load", kUsage,
                                 {"--port", "--host", "--input", "--clients", "--seconds", "--beam",
                                  "--bad", "--max-body", "--pid"});
  const int64_t port = args.integer("--port", 0, 1, 65535);
  if (port == 0) args.fail("--port is required");
  const std::string host = args.str("--host", "127.0.0.1");
  const std::string input = args.str("--input", "");
  if (input.empty()) args.fail("--input is required");
  const int64_t clients = args.integer("--clients", 64, 1, 4096);
  const double seconds = args.number("--seconds", 30, 0.1, 86400);
  const int64_t beam = args.integer("--beam", 4, 1, 64);
  const double bad = args.number("--bad", 0, 0, 1);
  const int64_t max_body = args.integer("--max-body", 1 << 20, 1);
  const int64_t pid = args.integer("--pid", 0, 0);

  std::vector<std::string> sentences;
  {
    std::ifstream f(input);
    if (!f) args.fail("--input " + input + ": cannot read it");
    std::string line;
    while (std::getline(f, line))
      if (!line.empty()) sentences.push_back(line);
    if (sentences.empty()) args.fail("--input " + input + ": no sentences");
  }

  std::atomic<int64_t> next{0};
  std::mutex mutex;
  Tally all;
  std::vector<int64_t> rss;
  std::atomic<bool> done{false};
  std::thread sampler([&] {
    while (pid > 0 && !done) {
      rss.push_back(rss_kib(pid));
      for (int i = 0; i < 10 && !done; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  const auto start = Clock::now();
  const auto end =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));

  std::vector<std::thread> threads;
  for (int64_t c = 0; c < clients; ++c)
    threads.emplace_back([&, c] {
      Tally mine;
      asio::io_context io;
      std::unique_ptr<tcp::socket> socket;
      boost::beast::flat_buffer buffer;
      uint64_t draw = 0x9e3779b97f4a7c15ull * static_cast<uint64_t>(c + 1);
      while (Clock::now() < end) {
        const int64_t k = next++;
        draw = draw * 6364136223846793005ull + 1442695040888963407ull;
        const bool is_bad = bad > 0 && static_cast<double>(draw >> 11) / 9007199254740992.0 < bad;
        http::request<http::string_body> req{http::verb::post, "/v1/translate", 11};
        req.set(http::field::host, host);
        req.set(http::field::content_type, "application/json");
        const std::string& s = sentences[static_cast<size_t>(k) % sentences.size()];
        if (!is_bad) {
          req.body() = json{{"text", s}, {"beam", beam}}.dump();
        } else {
          switch (k % 6) {
            case 0:
              req.body() = "{\"text\": \"" + s;
              break;  // unterminated JSON
            case 1:
              req.body() = json{{"text", s}, {"colour", 1}}.dump();
              break;
            case 2:
              req.body() = json{{"text", s}, {"beam", 0}}.dump();
              break;
            case 3:
              req.body() = std::string(static_cast<size_t>(max_body) + 1, ' ');
              break;
            case 4:
              req.body() = json{{"text", std::vector<std::string>(100000, "a")}}.dump();
              break;
            default:
              req.method(http::verb::put);
              req.body() = json{{"text", s}}.dump();
              break;
          }
        }
        req.prepare_payload();
        const auto t0 = Clock::now();
        int status = 0;
        std::string body;
        try {
          if (!socket) {
            socket = std::make_unique<tcp::socket>(io);
            socket->connect({asio::ip::make_address(host), static_cast<unsigned short>(port)});
            buffer.clear();
          }
          http::write(*socket, req);
          http::response<http::string_body> res;
          http::read(*socket, buffer, res);
          status = static_cast<int>(res.result_int());
          body = std::move(res.body());
          if (!res.keep_alive()) socket.reset();
        } catch (const std::exception& e) {
          socket.reset();
          body = e.what();
        }
        const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
        if (is_bad) {
          (status >= 400 && status < 500 ? mine.bad_4xx : mine.bad_other)++;
          if (!(status >= 400 && status < 500) && mine.failures.size() < 3)
            mine.failures.push_back("bad request " + std::to_string(k % 6) + ": " +
                                    std::to_string(status) + " " + body.substr(0, 200));
        } else if (status == 200) {
          ++mine.ok;
          mine.latencies_ms.push_back(ms);
          const json j = json::parse(body, nullptr, false);
          if (!j.is_discarded()) mine.target_tokens += j["usage"].value("target_tokens", 0);
        } else {
          ++mine.failed;
          if (mine.failures.size() < 3)
            mine.failures.push_back(std::to_string(status) + " " + body.substr(0, 200));
        }
      }
      std::lock_guard lock(mutex);
      all.ok += mine.ok;
      all.failed += mine.failed;
      all.bad_4xx += mine.bad_4xx;
      all.bad_other += mine.bad_other;
      all.target_tokens += mine.target_tokens;
      all.latencies_ms.insert(all.latencies_ms.end(), mine.latencies_ms.begin(),
                              mine.latencies_ms.end());
      for (auto& f : mine.failures)
        if (all.failures.size() < 5) all.failures.push_back(std::move(f));
    });
  for (auto& t : threads) t.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  done = true;
  sampler.join();

  std::sort(all.latencies_ms.begin(), all.latencies_ms.end());
  auto pct = [&](double q) {
    if (all.latencies_ms.empty()) return 0.0;
    const auto i = static_cast<size_t>(q * static_cast<double>(all.latencies_ms.size() - 1) + 0.5);
    return all.latencies_ms[i];
  };
  json out = {{"clients", clients},
              {"seconds", elapsed},
              {"ok", all.ok},
              {"failed", all.failed},
              {"bad_4xx", all.bad_4xx},
              {"bad_not_4xx", all.bad_other},
              {"sentences_per_s", static_cast<double>(all.ok) / elapsed},
              {"target_tokens_per_s", static_cast<double>(all.target_tokens) / elapsed},
              {"latency_ms",
               {{"p50", pct(0.5)},
                {"p90", pct(0.9)},
                {"p99", pct(0.99)},
                {"max", all.latencies_ms.empty() ? 0.0 : all.latencies_ms.back()}}},
              {"failures", all.failures}};
  if (pid > 0 && !rss.empty())
    // "warm": the sample a tenth of the way in, once the server's arenas and caches have grown
    // to the load (growth after it is what a leak would show).
    out["rss_kib"] = {{"first", rss.front()},
                      {"warm", rss[rss.size() / 10]},
                      {"last", rss.back()},
                      {"max", *std::max_element(rss.begin(), rss.end())},
                      {"samples", rss.size()}};
  std::printf("%s\n", out.dump().c_str());
  return all.failed == 0 && all.bad_other == 0 ? 0 : 1;
}
