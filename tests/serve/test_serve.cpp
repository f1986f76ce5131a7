// The HTTP server end to end, in process, on a loopback port: replies equal Translator's for
// concurrent requests with mixed options (continuous batching changes nothing), every error is
// a JSON 4xx/5xx with the right status, a client that leaves is cancelled, stop() lets
// in-flight requests finish; and the request parser on its own.
#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "decode/embed.h"
#include "decode/generator.h"
#include "decode/translator.h"
#include "serve/api.h"
#include "serve/server.h"
#include "util.h"

namespace attend {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using json = nlohmann::json;

struct Reply {
  int status = 0;
  std::string body;
  std::string retry_after;
  json j() const { return json::parse(body); }
};

Reply call(int port, http::verb verb, const std::string& target, const std::string& body = "",
           const std::vector<std::pair<std::string, std::string>>& headers = {}) {
  asio::io_context io;
  tcp::socket s(io);
  s.connect({asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)});
  http::request<http::string_body> req{verb, target, 11};
  req.set(http::field::host, "127.0.0.1");
  for (const auto& [k, v] : headers) req.set(k, v);
  if (verb == http::verb::post) req.set(http::field::content_type, "application/json");
  req.body() = body;
  req.prepare_payload();
  http::write(s, req);
  boost::beast::flat_buffer buf;
  http::response<http::string_body> res;
  http::read(s, buf, res);
  return {static_cast<int>(res.result_int()), res.body(),
          std::string(res[http::field::retry_after])};
}

Reply post(int port, const json& body) {
  return call(port, http::verb::post, "/v1/translate", body.dump());
}

const char* kAlphabet = "abcdefghijklmnopqrstuvwxyz .,!?";

// A random tiny model over a character vocabulary (its outputs are gibberish, but
// deterministic: what matters is that every path gives the same gibberish).
struct Fixture {
  data::Tokenizer tokenizer = data::Tokenizer::train_chars(kAlphabet);
  std::unique_ptr<nn::EncoderDecoder> model;
  explicit Fixture(uint64_t seed = 3) {
    nn::TransformerConfig c = nn::TransformerConfig::preset("tiny");
    c.d_model = 32, c.ffn = 48, c.heads = 4, c.encoder_layers = 2, c.decoder_layers = 2;
    c.src_vocab = c.tgt_vocab = tokenizer.vocab_size();
    c.norm = nn::Norm::kPre;
    c.max_positions = 2048;
    model = std::make_unique<nn::EncoderDecoder>(c, seed);
    model->set_training(false);
  }
  std::vector<serve::ModelEntry> entries() const {
    return {{"tiny", model.get(), &tokenizer, "(in memory)"}};
  }
};

// A server running on its own thread, stopped and joined at scope exit.
struct Running {
  serve::Server server;
  std::thread thread;
  Running(std::vector<serve::ModelEntry> models, serve::ServerOptions o)
      : server(std::move(models),
               [&] {
                 o.port = 0;
                 return o;
               }()),
        thread([this] { server.run(); }) {}
  ~Running() {
    server.stop();
    thread.join();
  }
  int port() const { return server.port(); }
};

int64_t metric(int port, const std::string& name) {
  const std::string text = call(port, http::verb::get, "/metrics").body;
  const auto at = text.find("\n" + name + " ");
  if (at == std::string::npos) return -1;
  return std::stoll(text.substr(at + name.size() + 2));
}

TEST(Serve, RepliesEqualTranslatorUnderConcurrentLoad) {
  const Fixture f;
  serve::ServerOptions o;
  o.scheduling.max_batch_tokens = 60;  // small: requests queue and join mid-batch
  Running srv(f.entries(), o);
  const decode::Translator translator(*f.model, f.tokenizer);

  struct Case {
    std::vector<std::string> texts;
    json options;
  };
  std::vector<Case> cases;
  const std::vector<std::string> words = {
      "the cat sat", "a dog", "hello world!", "quiet, please", "zebra crossing", "", "x"};
  for (int i = 0; i < 12; ++i) {
    Case c;
    c.texts = {words[static_cast<size_t>(i) % words.size()],
               words[static_cast<size_t>(i * 3 + 1) % words.size()]};
    const int kind = i % 4;
    if (kind == 0) c.options = {{"beam", 4}, {"n_best", 2}, {"max_extra", 12}};
    if (kind == 1) c.options = {{"beam", 1}, {"max_extra", 9}};
    if (kind == 2) c.options = {{"sample", true}, {"seed", 7 + i}, {"top_k", 5}, {"max_extra", 10}};
    if (kind == 3) c.options = {{"beam", 3}, {"alpha", 1.0}, {"max_extra", 15}};
    cases.push_back(std::move(c));
  }
  std::vector<Reply> replies(cases.size());
  std::vector<std::thread> clients;
  for (size_t i = 0; i < cases.size(); ++i)
    clients.emplace_back([&, i] {
      json body = cases[i].options;
      body["text"] = cases[i].texts;
      replies[i] = post(srv.port(), body);
    });
  for (auto& t : clients) t.join();

  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE("request " + std::to_string(i));
    ASSERT_EQ(replies[i].status, 200) << replies[i].body;
    const json r = replies[i].j();
    decode::TranslateOptions to;
    const json& op = cases[i].options;
    to.search.beam = op.value("beam", 4);
    to.search.n_best = op.value("n_best", 1);
    to.search.alpha = op.value("alpha", 0.6);
    to.search.max_extra = op.value("max_extra", 50);
    to.search.sample = op.value("sample", false);
    to.search.seed = op.value("seed", 0);
    to.search.top_k = op.value("top_k", 0);
    if (to.search.sample) to.search.beam = 1;
    const auto want = translator.translate(cases[i].texts, to);
    EXPECT_EQ(r["model"], "tiny");
    ASSERT_EQ(r["translations"].size(), want.size());
    int64_t target_tokens = 0;
    for (size_t s = 0; s < want.size(); ++s) {
      const json& got = r["translations"][s];
      ASSERT_EQ(got.size(), want[s].size());
      for (size_t k = 0; k < want[s].size(); ++k) {
        EXPECT_EQ(got[k]["text"], want[s][k].text);
        EXPECT_NEAR(got[k]["score"].get<double>(), want[s][k].score, 1e-4);
        ASSERT_EQ(got[k]["tokens"].size(), want[s][k].tokens.size());
        for (size_t t = 0; t < want[s][k].tokens.size(); ++t)
          EXPECT_EQ(got[k]["tokens"][t], f.tokenizer.piece(want[s][k].tokens[t]));
        target_tokens += static_cast<int64_t>(want[s][k].tokens.size());
      }
    }
    EXPECT_EQ(r["usage"]["target_tokens"], target_tokens);
    EXPECT_GE(r["time_ms"].get<double>(), 0);
  }
  // The metrics saw them all, and the batch is empty again.
  const std::string text = call(srv.port(), http::verb::get, "/metrics").body;
  EXPECT_NE(text.find("attend_requests_total{endpoint=\"/v1/translate\",status=\"200\"} 12"),
            std::string::npos)
      << text;
  EXPECT_EQ(metric(srv.port(), "attend_translate_seconds_count"), 12);
  EXPECT_NE(text.find("attend_queue_sentences{model=\"tiny\"} 0"), std::string::npos);
  EXPECT_GT(metric(srv.port(), "attend_target_tokens_total"), 0);
}

// "attention": true adds the best translation's encoder-attention weights, those of
// decode::cross_attention (to the reply's four decimals), labelled with the subwords.
TEST(Serve, AttentionWeightsOfTheBestTranslation) {
  const Fixture f;
  Running srv(f.entries(), {});
  const Reply r = post(srv.port(), {{"text", {"the cat sat", ""}},
                                    {"beam", 3},
                                    {"n_best", 2},
                                    {"max_extra", 8},
                                    {"attention", true}});
  ASSERT_EQ(r.status, 200) << r.body;
  const json reply = r.j();
  const json& best = reply["translations"][0][0];
  ASSERT_TRUE(best.contains("attention"));
  EXPECT_FALSE(reply["translations"][0][1].contains("attention"));  // the best one only
  EXPECT_FALSE(reply["translations"][1][0].contains("attention"));  // an empty source
  const json& a = best["attention"];
  const std::vector<int32_t> source = f.model->config().source(f.tokenizer.encode("the cat sat"));
  std::vector<int32_t> target;
  for (const auto& piece : best["tokens"]) target.push_back(f.tokenizer.encode(piece)[0]);
  ASSERT_EQ(a["source_tokens"].size(), source.size());
  for (size_t s = 0; s < source.size(); ++s)
    EXPECT_EQ(a["source_tokens"][s], f.tokenizer.piece(source[s]));
  ASSERT_EQ(a["target_tokens"].size(), target.size() + 1);
  EXPECT_EQ(a["target_tokens"].back(), "</s>");
  const std::vector<Tensor> want = decode::cross_attention(*f.model, source, target);
  ASSERT_EQ(a["layers"].size(), want.size());
  for (size_t l = 0; l < want.size(); ++l) {
    const std::vector<float> w = want[l].to_vector<float>();
    const auto H = static_cast<size_t>(want[l].size(0)), T = static_cast<size_t>(want[l].size(1)),
               S = static_cast<size_t>(want[l].size(2));
    ASSERT_EQ(a["layers"][l].size(), H);
    for (size_t h = 0; h < H; ++h) {
      ASSERT_EQ(a["layers"][l][h].size(), T);
      for (size_t t = 0; t < T; ++t) {
        ASSERT_EQ(a["layers"][l][h][t].size(), S);
        for (size_t s = 0; s < S; ++s)
          EXPECT_NEAR(a["layers"][l][h][t][s].get<double>(), w[(h * T + t) * S + s], 0.5e-4 + 1e-7);
      }
    }
  }
  EXPECT_EQ(post(srv.port(), {{"text", "a"}, {"attention", 1}}).status, 400);
}

TEST(Serve, BadRequestsGetJsonErrorsAndTheServerGoesOn) {
  const Fixture f;
  serve::ServerOptions o;
  o.limits.max_body_bytes = 2000;
  o.limits.max_sentences = 3;
  o.max_sentence_tokens = 20;
  o.scheduling.max_queue = 2;
  Running srv(f.entries(), o);
  const int port = srv.port();
  auto expect_error = [&](const Reply& r, int status, const std::string& code,
                          const std::string& says) {
    EXPECT_EQ(r.status, status) << r.body;
    const json j = r.j();
    EXPECT_EQ(j["error"]["code"], code) << r.body;
    EXPECT_NE(j["error"]["message"].get<std::string>().find(says), std::string::npos) << r.body;
  };
  expect_error(call(port, http::verb::post, "/v1/translate", "{\"text\": "), 400, "bad_request",
               "not valid JSON");
  expect_error(post(port, {{"text", "a"}, {"beam", 0}}), 400, "bad_request", "beam");
  expect_error(post(port, {{"text", "a"}, {"colour", "red"}}), 400, "bad_request", "colour");
  expect_error(post(port, {{"text", {"a", "b", "c", "d"}}}), 400, "bad_request", "limit of 3");
  expect_error(post(port, {{"text", std::string(25, 'a')}}), 400, "too_long", "limit of 20");
  expect_error(post(port, {{"text", "a"}, {"model", "big"}}), 404, "unknown_model", "'tiny'");
  expect_error(call(port, http::verb::post, "/v1/translate", std::string(3000, ' ')), 413,
               "too_large", "2000");
  expect_error(call(port, http::verb::get, "/v1/nothing"), 404, "not_found", "/v1/nothing");
  expect_error(call(port, http::verb::get, "/v1/translate"), 405, "method_not_allowed", "POST");
  const Reply full = post(port, {{"text", {"a", "b", "c"}}});  // 3 sentences, queue of 2
  expect_error(full, 503, "overloaded", "full queue");
  EXPECT_EQ(full.retry_after, "1");
  // A raw malformed request line.
  {
    asio::io_context io;
    tcp::socket s(io);
    s.connect({asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)});
    asio::write(s, asio::buffer(std::string("NOT HTTP AT ALL\r\n\r\n")));
    boost::beast::flat_buffer buf;
    http::response<http::string_body> res;
    http::read(s, buf, res);
    EXPECT_EQ(res.result_int(), 400u) << res.body();
  }
  // Still serving.
  const Reply ok = post(port, {{"text", "the cat"}, {"max_extra", 5}});
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(call(port, http::verb::get, "/health").j()["status"], "ok");
  const json models = call(port, http::verb::get, "/v1/models").j();
  EXPECT_EQ(models["data"][0]["id"], "tiny");
  EXPECT_EQ(models["data"][0]["max_sentence_tokens"], 20);
}

// A model held in int8 (attend serve --precision int8, or an attend quantize model): replies
// equal the Translator on the same int8 model, /v1/models says int8, and a request expecting
// another precision is refused naming the one the model runs in.
TEST(Serve, Int8ModelsServeWhatTheTranslatorGives) {
  const Fixture f;
  f.model->store_weights(DType::kI8);
  Running srv(f.entries(), serve::ServerOptions{});
  const int port = srv.port();
  const decode::Translator translator(*f.model, f.tokenizer);
  for (const int beam : {1, 4}) {
    const Reply r = post(port, {{"text", {"the cat sat", "hello world!"}},
                                {"beam", beam},
                                {"max_extra", 10},
                                {"precision", "int8"}});
    ASSERT_EQ(r.status, 200) << r.body;
    decode::TranslateOptions to;
    to.search.beam = beam;
    to.search.max_extra = 10;
    const auto want = translator.translate({"the cat sat", "hello world!"}, to);
    for (size_t s = 0; s < want.size(); ++s)
      EXPECT_EQ(r.j()["translations"][s][0]["text"], want[s][0].text);
  }
  EXPECT_EQ(call(port, http::verb::get, "/v1/models").j()["data"][0]["precision"], "int8");
  const Reply wrong = post(port, {{"text", "a"}, {"precision", "fp32"}});
  EXPECT_EQ(wrong.status, 400);
  EXPECT_NE(wrong.body.find("runs in int8"), std::string::npos) << wrong.body;
}

TEST(Serve, ApiKeyIsRequiredWhenSet) {
  const Fixture f;
  serve::ServerOptions o;
  o.api_key = "s3cret-key";
  Running srv(f.entries(), o);
  const std::string body = json{{"text", "a"}, {"max_extra", 3}}.dump();
  EXPECT_EQ(call(srv.port(), http::verb::post, "/v1/translate", body).status, 401);
  EXPECT_EQ(call(srv.port(), http::verb::post, "/v1/translate", body,
                 {{"Authorization", "Bearer s3cret-kez"}})
                .status,
            401);
  EXPECT_EQ(call(srv.port(), http::verb::get, "/metrics").status, 401);
  EXPECT_EQ(call(srv.port(), http::verb::post, "/v1/translate", body,
                 {{"Authorization", "Bearer s3cret-key"}})
                .status,
            200);
  EXPECT_EQ(
      call(srv.port(), http::verb::get, "/v1/models", "", {{"X-API-Key", "s3cret-key"}}).status,
      200);
  EXPECT_EQ(call(srv.port(), http::verb::get, "/health").status, 200);  // open for probes
}

// A request that decodes for many steps: EOS is barred until min_length.
json long_request() {
  return {{"text", "a long one"}, {"beam", 4}, {"min_length", 1000}, {"max_extra", 1020}};
}

TEST(Serve, AClientThatLeavesIsCancelled) {
  const Fixture f;
  Running srv(f.entries(), {});
  {
    asio::io_context io;
    tcp::socket s(io);
    s.connect({asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(srv.port())});
    http::request<http::string_body> req{http::verb::post, "/v1/translate", 11};
    req.body() = long_request().dump();
    req.prepare_payload();
    http::write(s, req);
    // Wait until it decodes, then hang up.
    for (int i = 0; i < 200 && metric(srv.port(), "attend_decoder_steps_total{model=\"tiny\"}") < 3;
         ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  int64_t cancelled = 0;
  for (int i = 0; i < 300 && cancelled == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    cancelled = metric(srv.port(), "attend_cancelled_requests_total");
  }
  EXPECT_EQ(cancelled, 1);
  // Its sentence left the batch long before 1,000 steps: the batch is empty.
  int64_t decoding = 1;
  for (int i = 0; i < 100 && decoding != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    decoding = metric(srv.port(), "attend_batch_sentences{model=\"tiny\"}");
  }
  EXPECT_EQ(decoding, 0);
  EXPECT_LT(metric(srv.port(), "attend_decoder_steps_total{model=\"tiny\"}"), 1000);
}

TEST(Serve, ARequestPastItsTimeoutGets504) {
  const Fixture f;
  serve::ServerOptions o;
  o.timeout_s = 0.05;
  Running srv(f.entries(), o);
  const Reply r = post(srv.port(), long_request());
  EXPECT_EQ(r.status, 504) << r.body;
  EXPECT_EQ(r.j()["error"]["code"], "timeout");
}

TEST(Serve, StopFinishesInFlightRequests) {
  const Fixture f;
  auto srv = std::make_unique<Running>(f.entries(), serve::ServerOptions{});
  Reply r;
  std::thread client([&] {
    json body = long_request();
    body["min_length"] = 120;
    body["max_extra"] = 130;
    r = post(srv->port(), body);
  });
  for (int i = 0; i < 300 && metric(srv->port(), "attend_batch_sentences{model=\"tiny\"}") < 1; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  srv.reset();  // stop() and join run(): returns only after the reply went out
  client.join();
  EXPECT_EQ(r.status, 200) << r.body;
}

TEST(Serve, APortInUseIsOneClearError) {
  const Fixture f;
  Running first(f.entries(), {});
  serve::ServerOptions o;
  o.port = first.port();
  const std::string e = test::error_of([&] { serve::Server second(f.entries(), o); });
  EXPECT_NE(e.find("cannot listen on 127.0.0.1:" + std::to_string(first.port())), std::string::npos)
      << e;
  EXPECT_NE(e.find("in use"), std::string::npos) << e;
  o.port = 0;
  o.host = "no.such.host.invalid";
  EXPECT_NE(test::error_of([&] { serve::Server s(f.entries(), o); }).find("--host"),
            std::string::npos);
}

// A random tiny character language model, served beside the translation model.
struct LmFixture {
  data::Tokenizer tokenizer = data::Tokenizer::train_chars("the cat sat on the mat.\n");
  std::unique_ptr<nn::DecoderOnly> model;
  LmFixture() {
    nn::TransformerConfig c = nn::TransformerConfig::preset("gpt-tiny");
    c.d_model = 32, c.ffn = 64, c.heads = 4, c.decoder_layers = 2, c.max_positions = 48;
    c.dropout = 0;
    c.tgt_vocab = c.src_vocab = tokenizer.vocab_size();
    model = std::make_unique<nn::DecoderOnly>(c, 5);
    model->set_training(false);
  }
  /// The fixture's translation model with this language model beside it, named "lm".
  std::vector<serve::ModelEntry> beside(const Fixture& f) const {
    std::vector<serve::ModelEntry> models = f.entries();
    models.push_back({"lm", nullptr, &tokenizer, "(in memory)", model.get()});
    return models;
  }
};

// The SSE stream of a completions request: the raw reply of a plain socket, de-chunked.
std::string stream_body(int port, const json& body) {
  asio::io_context io;
  tcp::socket s(io);
  s.connect({asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)});
  http::request<http::string_body> req{http::verb::post, "/v1/completions", 11};
  req.set(http::field::host, "127.0.0.1");
  req.set(http::field::content_type, "application/json");
  req.body() = body.dump();
  req.prepare_payload();
  http::write(s, req);
  boost::beast::flat_buffer buf;
  http::response<http::string_body> res;
  http::read(s, buf, res);  // Beast removes the chunk framing
  EXPECT_EQ(res.result_int(), 200u);
  EXPECT_EQ(res[http::field::content_type], "text/event-stream");
  return res.body();
}

// Completions equal the generator's output for the same options, streamed or not; the
// streamed pieces add up to the text; each endpoint refuses the other family's models.
TEST(Serve, CompletionsEqualTheGeneratorStreamedOrNot) {
  const Fixture f;
  const LmFixture lm;
  Running srv(lm.beside(f), {});
  const decode::Generator gen(*lm.model, lm.tokenizer);
  for (const double temperature : {0.0, 0.9}) {
    SCOPED_TRACE("temperature " + std::to_string(temperature));
    decode::GenerateOptions o;
    o.max_new = 20;
    o.temperature = temperature;
    o.seed = 11;
    const std::vector<std::string> prompts = {"the c", "on t"};
    std::vector<std::vector<int32_t>> ids;
    for (const auto& p : prompts) ids.push_back(gen.prompt_ids(p, "prompt"));
    const auto want = gen.generate(ids, o);
    const json body = {{"model", "lm"},
                       {"prompt", prompts},
                       {"max_tokens", 20},
                       {"temperature", temperature},
                       {"seed", 11}};
    const Reply r = call(srv.port(), http::verb::post, "/v1/completions", body.dump());
    ASSERT_EQ(r.status, 200) << r.body;
    const json j = r.j();
    ASSERT_EQ(j["choices"].size(), 2u);
    int64_t completion_tokens = 0;
    for (size_t i = 0; i < 2; ++i) {
      EXPECT_EQ(j["choices"][i]["text"], want[i].text);
      EXPECT_EQ(j["choices"][i]["index"], i);
      EXPECT_EQ(j["choices"][i]["finish_reason"], want[i].ended ? "stop" : "length");
      completion_tokens += static_cast<int64_t>(want[i].tokens.size());
    }
    EXPECT_EQ(j["usage"]["completion_tokens"], completion_tokens);
    EXPECT_EQ(j["usage"]["prompt_tokens"], 9);
    EXPECT_EQ(j["object"], "text_completion");

    json streamed = body;
    streamed["stream"] = true;
    const std::string events = stream_body(srv.port(), streamed);
    std::vector<std::string> text(2);
    std::vector<std::string> reasons(2);
    size_t at = 0, n_events = 0;
    bool done = false;
    while ((at = events.find("data: ", at)) != std::string::npos) {
      const size_t end = events.find("\n\n", at);
      ASSERT_NE(end, std::string::npos);
      const std::string data = events.substr(at + 6, end - at - 6);
      at = end + 2;
      ++n_events;
      if (data == "[DONE]") {
        done = true;
        continue;
      }
      ASSERT_FALSE(done) << "an event after [DONE]";
      const json e = json::parse(data);
      const auto i = e["choices"][0]["index"].get<size_t>();
      text[i] += e["choices"][0]["text"].get<std::string>();
      if (!e["choices"][0]["finish_reason"].is_null())
        reasons[i] = e["choices"][0]["finish_reason"];
    }
    EXPECT_TRUE(done);
    EXPECT_GT(n_events, 4u);  // token by token, not one blob
    for (size_t i = 0; i < 2; ++i) {
      EXPECT_EQ(text[i], want[i].text);
      EXPECT_EQ(reasons[i], want[i].ended ? "stop" : "length");
    }
  }
  // Each endpoint takes its own family; a prompt that fills the context is refused.
  Reply r = call(srv.port(), http::verb::post, "/v1/completions",
                 json{{"prompt", "a"}, {"model", "tiny"}}.dump());
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(r.j()["error"]["code"], "wrong_model");
  r = post(srv.port(), {{"text", "a"}, {"model", "lm"}});
  EXPECT_EQ(r.status, 400) << r.body;
  r = call(srv.port(), http::verb::post, "/v1/completions",
           json{{"prompt", std::string(60, 't')}}.dump());
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(r.j()["error"]["code"], "too_long");
  r = call(srv.port(), http::verb::post, "/v1/completions",
           json{{"prompt", "a"}, {"n", 2}, {"temperature", 0}}.dump());
  EXPECT_EQ(r.status, 400) << r.body;  // greedy search gives one completion
  r = call(srv.port(), http::verb::post, "/v1/completions",
           json{{"prompt", "a"}, {"n", 3}, {"beam", 2}}.dump());
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("n: at most the beam (2)"), std::string::npos) << r.body;
  const json list = call(srv.port(), http::verb::get, "/v1/models").j();
  ASSERT_EQ(list["data"].size(), 2u);
  EXPECT_EQ(list["data"][1]["task"], "generation");
  EXPECT_EQ(list["data"][1]["context"], 48);
  // Without a language model, completions are a 404 naming the missing family.
  Running only_translation(f.entries(), {});
  r = call(only_translation.port(), http::verb::post, "/v1/completions",
           json{{"prompt", "a"}}.dump());
  EXPECT_EQ(r.status, 404) << r.body;
}

// The text of each choice of a streamed completions reply, its events added up.
std::vector<std::string> streamed_texts(const std::string& events, size_t choices) {
  std::vector<std::string> text(choices);
  size_t at = 0;
  while ((at = events.find("data: ", at)) != std::string::npos) {
    const size_t end = events.find("\n\n", at);
    const std::string data = events.substr(at + 6, end - at - 6);
    at = end + 2;
    if (data == "[DONE]") continue;
    const json e = json::parse(data);
    text.at(e["choices"][0]["index"].get<size_t>()) += e["choices"][0]["text"].get<std::string>();
  }
  return text;
}

// Beam search and n on /v1/completions: with "beam" the n best hypotheses of the decoding
// session (the first equal to the generator's beam search), streamed or not; when drawing, n
// draws per prompt, draw j of prompt i from stream i * n + j.
TEST(Serve, CompletionsSearchWithABeamAndReturnN) {
  const Fixture f;
  const LmFixture lm;
  Running srv(lm.beside(f), {});
  const decode::Generator gen(*lm.model, lm.tokenizer);
  const std::vector<std::string> prompts = {"the c", "on t"};
  std::vector<std::vector<int32_t>> ids;
  for (const auto& p : prompts) ids.push_back(gen.prompt_ids(p, "prompt"));

  decode::GenerateOptions o;
  o.max_new = 12;
  o.beam = 4;
  o.alpha = 0.6;
  const auto best = gen.generate(ids, o);
  // The second best of each prompt, from a decoding session asked for two.
  std::vector<std::string> second;
  for (size_t i = 0; i < ids.size(); ++i) {
    decode::Session session(*lm.model, &lm.tokenizer);
    decode::SearchOptions s = o.search();
    s.n_best = 2;
    session.admit({{ids[i], s, i, 0}});
    while (!session.idle()) session.step();
    const auto results = session.retire();
    ASSERT_EQ(results.size(), 1u);
    ASSERT_EQ(results[0].hypotheses.size(), 2u);
    second.push_back(lm.tokenizer.decode(results[0].hypotheses[1].tokens));
  }
  const json body = {{"model", "lm"}, {"prompt", prompts}, {"max_tokens", 12},
                     {"beam", 4},     {"alpha", 0.6},      {"n", 2}};
  const Reply r = call(srv.port(), http::verb::post, "/v1/completions", body.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  const json j = r.j();
  ASSERT_EQ(j["choices"].size(), 4u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(j["choices"][2 * i]["text"], best[i].text) << "prompt " << i;
    EXPECT_EQ(j["choices"][2 * i + 1]["text"], second[i]) << "prompt " << i;
    EXPECT_NE(j["choices"][2 * i]["text"], j["choices"][2 * i + 1]["text"]);
  }
  EXPECT_EQ(j["usage"]["prompt_tokens"], 9);  // each prompt once
  json streamed = body;
  streamed["stream"] = true;
  const auto texts = streamed_texts(stream_body(srv.port(), streamed), 4);
  for (size_t k = 0; k < 4; ++k) EXPECT_EQ(texts[k], j["choices"][k]["text"]) << "choice " << k;

  // Drawing n = 3: draw j of prompt i equals the generator's prompt at index i * 3 + j.
  decode::GenerateOptions d;
  d.max_new = 12;
  d.temperature = 0.9;
  d.seed = 11;
  std::vector<std::vector<int32_t>> spread;
  for (size_t i = 0; i < 2; ++i)
    for (size_t k = 0; k < 3; ++k) spread.push_back(ids[i]);
  const auto draws = gen.generate(spread, d);
  const Reply n3 = call(srv.port(), http::verb::post, "/v1/completions",
                        json{{"model", "lm"},
                             {"prompt", prompts},
                             {"max_tokens", 12},
                             {"temperature", 0.9},
                             {"seed", 11},
                             {"n", 3}}
                            .dump());
  ASSERT_EQ(n3.status, 200) << n3.body;
  ASSERT_EQ(n3.j()["choices"].size(), 6u);
  std::set<std::string> distinct;
  for (size_t k = 0; k < 6; ++k) {
    EXPECT_EQ(n3.j()["choices"][k]["text"], draws[k].text) << "choice " << k;
    distinct.insert(draws[k].text);
  }
  EXPECT_GE(distinct.size(), 3u);  // the draws are not one text repeated
}

// Concurrent completion requests join one running batch (the scheduler admits them between
// steps) and each still gets what the generator gives it alone.
TEST(Serve, ConcurrentCompletionsShareTheBatchAndEqualTheGenerator) {
  const LmFixture lm;
  serve::ServerOptions o;
  o.scheduling.max_batch_tokens = 120;  // small: some requests wait, then join mid-batch
  Running srv({{"lm", nullptr, &lm.tokenizer, "(in memory)", lm.model.get()}}, o);
  const decode::Generator gen(*lm.model, lm.tokenizer);
  const std::vector<std::string> prompts = {"the c", "on t", "mat", "sat on the m", "a", "th"};
  std::vector<Reply> replies(prompts.size());
  std::vector<std::thread> clients;
  for (size_t i = 0; i < prompts.size(); ++i)
    clients.emplace_back([&, i] {
      const json body = {{"prompt", json::array({prompts[i], prompts[(i + 1) % prompts.size()]})},
                         {"max_tokens", 10 + 3 * static_cast<int>(i)},
                         {"temperature", i % 2 ? 0.8 : 0.0},
                         {"seed", 20 + i}};
      replies[i] = call(srv.port(), http::verb::post, "/v1/completions", body.dump());
    });
  for (auto& t : clients) t.join();
  for (size_t i = 0; i < prompts.size(); ++i) {
    SCOPED_TRACE("request " + std::to_string(i));
    ASSERT_EQ(replies[i].status, 200) << replies[i].body;
    decode::GenerateOptions g;
    g.max_new = 10 + 3 * static_cast<int64_t>(i);
    g.temperature = i % 2 ? 0.8 : 0.0;
    g.seed = 20 + i;
    const auto want = gen.generate(
        {gen.prompt_ids(prompts[i], "p"), gen.prompt_ids(prompts[(i + 1) % prompts.size()], "p")},
        g);
    const json j = replies[i].j();
    for (size_t k = 0; k < 2; ++k) EXPECT_EQ(j["choices"][k]["text"], want[k].text);
  }
  const std::string text = call(srv.port(), http::verb::get, "/metrics").body;
  EXPECT_NE(text.find("attend_lm_batch_prompts{model=\"lm\"} 0"), std::string::npos) << text;
  EXPECT_NE(text.find("attend_lm_queue_prompts{model=\"lm\"} 0"), std::string::npos);
}

// GET / is the self-contained page: HTML that draws the heatmap, nothing loaded from elsewhere.
TEST(Serve, ThePageIsServedWithoutAKey) {
  const Fixture f;
  serve::ServerOptions o;
  o.api_key = "k";
  Running srv(f.entries(), o);
  asio::io_context io;
  tcp::socket s(io);
  s.connect({asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(srv.port())});
  http::request<http::string_body> req{http::verb::get, "/", 11};
  req.set(http::field::host, "127.0.0.1");
  http::write(s, req);
  boost::beast::flat_buffer buf;
  http::response<http::string_body> res;
  http::read(s, buf, res);
  EXPECT_EQ(res.result_int(), 200u);
  EXPECT_EQ(res[http::field::content_type], "text/html; charset=utf-8");
  EXPECT_NE(res["Content-Security-Policy"].find("default-src 'self'"), std::string::npos);
  EXPECT_NE(res.body().find("<canvas id=\"heat\">"), std::string::npos);
  EXPECT_NE(res.body().find("/v1/completions"), std::string::npos);
  EXPECT_EQ(res.body().find("http://"), std::string::npos);  // no external resource
  EXPECT_EQ(res.body().find("https://"), std::string::npos);
  EXPECT_EQ(call(srv.port(), http::verb::get, "/v1/models").status, 401);
}

TEST(ServeApi, ParseTranslateChecksEveryField) {
  const serve::Limits lim;
  const serve::TranslateRequest r = serve::parse_translate(
      R"({"text": ["a", "b"], "beam": 2, "n_best": 2, "alpha": 0.5, "model": "m"})", lim);
  EXPECT_EQ(r.texts, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(r.search.beam, 2);
  EXPECT_EQ(r.search.n_best, 2);
  EXPECT_EQ(r.model, "m");
  EXPECT_EQ(serve::parse_translate(R"({"text": "x", "sample": true})", lim).search.beam, 1);
  auto status_of = [&](const std::string& body) {
    try {
      serve::parse_translate(body, lim);
    } catch (const serve::ApiError& e) {
      return std::to_string(e.status()) + " " + e.what();
    }
    return std::string("ok");
  };
  EXPECT_EQ(status_of("[1]").substr(0, 3), "400");
  EXPECT_EQ(status_of("{}").substr(0, 3), "400");
  EXPECT_NE(status_of(R"({"text": []})").find("empty"), std::string::npos);
  EXPECT_NE(status_of(R"({"text": [1]})").find("text[0]"), std::string::npos);
  EXPECT_NE(status_of(R"({"text": "a\nb"})").find("line breaks"), std::string::npos);
  EXPECT_NE(status_of(R"({"text": "a", "beam": 2.5})").find("beam"), std::string::npos);
  EXPECT_NE(status_of(R"({"text": "a", "beam": 2, "n_best": 3})").find("n_best"),
            std::string::npos);
  EXPECT_NE(status_of(R"({"text": "a", "seed": -1})").find("seed"), std::string::npos);
  EXPECT_NE(status_of(R"({"text": "a", "top_p": 1.5})").find("top_p"), std::string::npos);
  EXPECT_NE(status_of(R"({"text": "a", "precision": "fp16"})").find("precision"),
            std::string::npos);
  EXPECT_NE(status_of("{\"text\": \"\xff\"}").find("JSON"), std::string::npos);  // bad UTF-8
  EXPECT_EQ(status_of(R"({"text": "a", "precision": "fp32"})"), "ok");
  EXPECT_EQ(status_of(std::string(lim.max_body_bytes + 1, ' ')).substr(0, 3), "413");
  // No library file:line in what clients read.
  EXPECT_EQ(status_of(R"({"text": "a", "beam": 2, "n_best": 3})").find(".cpp"), std::string::npos);
}

// POST /v1/embeddings: OpenAI's reply shape, the vectors attend embed computes (normalized by
// default, pooling and normalize as asked), errors naming the field, and a translation model
// served beside it that answers /v1/translate only.
TEST(Serve, EmbeddingsEqualDecodeEmbed) {
  const Fixture translator;
  nn::TransformerConfig c = nn::TransformerConfig::preset("tiny");
  c.arch = nn::Arch::kEncoderOnly;
  c.d_model = 32, c.ffn = 48, c.heads = 4, c.encoder_layers = 2;
  c.src_vocab = c.tgt_vocab = translator.tokenizer.vocab_size();
  nn::EncoderOnly encoder(c, 5);
  encoder.set_training(false);
  std::vector<serve::ModelEntry> entries = translator.entries();
  entries.push_back({"enc", nullptr, &translator.tokenizer, "(in memory)", nullptr, &encoder});
  Running srv(entries, {});
  const int port = srv.port();
  const std::vector<std::string> texts = {"a cat sat.", "hello there!", "x"};
  const Reply r = call(port, http::verb::post, "/v1/embeddings",
                       json{{"input", texts}, {"model", "enc"}}.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  const json j = r.j();
  EXPECT_EQ(j["object"], "list");
  EXPECT_EQ(j["model"], "enc");
  decode::EmbedOptions o;  // mean pooling, normalized
  const std::vector<float> want =
      decode::embed(encoder, translator.tokenizer, texts, o).to_vector<float>();
  ASSERT_EQ(j["data"].size(), texts.size());
  int64_t tokens = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    EXPECT_EQ(j["data"][i]["object"], "embedding");
    EXPECT_EQ(j["data"][i]["index"], i);
    const auto got = j["data"][i]["embedding"].get<std::vector<float>>();
    ASSERT_EQ(got.size(), 32u);
    for (size_t d = 0; d < got.size(); ++d) EXPECT_EQ(got[d], want[i * 32 + d]);
    tokens += static_cast<int64_t>(texts[i].size()) + 2;  // characters, BOS and EOS
  }
  EXPECT_EQ(j["usage"]["prompt_tokens"], tokens);
  // cls pooling without normalization, the only embedding model named by default.
  const Reply cls = call(port, http::verb::post, "/v1/embeddings",
                         json{{"input", "a cat"}, {"pooling", "cls"}, {"normalize", false}}.dump());
  ASSERT_EQ(cls.status, 200) << cls.body;
  o.pooling = decode::Pooling::kCls, o.normalize = false;
  const std::vector<float> want_cls =
      decode::embed(encoder, translator.tokenizer, {"a cat"}, o).to_vector<float>();
  EXPECT_EQ(cls.j()["data"][0]["embedding"].get<std::vector<float>>(), want_cls);
  // Each endpoint takes its own kind of model.
  const Reply wrong = call(port, http::verb::post, "/v1/embeddings",
                           json{{"input", "a"}, {"model", "tiny"}}.dump());
  EXPECT_EQ(wrong.status, 400);
  EXPECT_NE(wrong.body.find("/v1/embeddings takes embeddings models"), std::string::npos);
  EXPECT_EQ(post(port, {{"text", "a"}, {"model", "enc"}}).status, 400);
  EXPECT_EQ(post(port, {{"text", "a"}}).status, 200);  // the translation model
  const Reply bad = call(port, http::verb::post, "/v1/embeddings", "{\"input\": [\"a\", 7]}");
  EXPECT_EQ(bad.status, 400) << bad.body;
  EXPECT_NE(bad.body.find("input[1]"), std::string::npos) << bad.body;
  EXPECT_EQ(metric(port, "attend_requests_total{endpoint=\"/v1/embeddings\",status=\"200\"}"), 2);
  const json models = json::parse(call(port, http::verb::get, "/v1/models").body);
  EXPECT_EQ(models["data"][1]["task"], "embeddings");
}

TEST(ServeApi, ParseEmbeddingsChecksEveryField) {
  const serve::Limits lim;
  const serve::EmbeddingRequest r = serve::parse_embeddings(
      R"({"input": ["a", "b\nc"], "model": "m", "encoding_format": "float", "user": "u"})", lim);
  EXPECT_EQ(r.texts, (std::vector<std::string>{"a", "b\nc"}));
  EXPECT_EQ(r.model, "m");
  EXPECT_TRUE(r.normalize);
  EXPECT_EQ(r.pooling, "mean");
  auto error_of = [&](const std::string& body) {
    try {
      serve::parse_embeddings(body, lim);
    } catch (const serve::ApiError& e) {
      return std::to_string(e.status()) + " " + e.what();
    }
    return std::string("ok");
  };
  EXPECT_NE(error_of("{}").find("input: required"), std::string::npos);
  EXPECT_NE(error_of(R"({"input": []})").find("empty"), std::string::npos);
  EXPECT_NE(error_of(R"({"input": "a", "encoding_format": "base64"})").find("float"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"input": "a", "pooling": "max"})").find("pooling"), std::string::npos);
  EXPECT_NE(error_of(R"({"input": "a", "dimensions": 8})").find("dimensions"), std::string::npos);
  EXPECT_NE(error_of(R"({"input": [1]})").find("input[0]"), std::string::npos);
}

TEST(ServeApi, KeysCompareWhole) {
  EXPECT_TRUE(serve::same_key("abc", "abc"));
  EXPECT_FALSE(serve::same_key("abd", "abc"));
  EXPECT_FALSE(serve::same_key("ab", "abc"));
  EXPECT_FALSE(serve::same_key("abcd", "abc"));
  EXPECT_FALSE(serve::same_key("", "abc"));
}

}  // namespace
}  // namespace attend
