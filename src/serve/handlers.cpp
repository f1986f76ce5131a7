// The endpoint handlers (see handlers.h).
#include "serve/handlers.h"

#include <algorithm>
#include <boost/beast/http.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "decode/embed.h"
#include "decode/translator.h"
#include "serve/api.h"

namespace attend::serve {
namespace {

namespace http = boost::beast::http;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

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

}  // namespace

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

HttpResponse Handlers::models(const HttpRequest& req) const {
  json list = json::array();
  for (const Served& m : models_) {
    const nn::TransformerConfig& c = m.entry.any_model().config();
    json item = {{"id", m.entry.name},
                 {"object", "model"},
                 {"task", m.task()},
                 {"dir", m.entry.dir},
                 {"d_model", c.d_model},
                 {"heads", c.heads},
                 {"vocab", m.entry.encoder ? c.src_vocab : c.tgt_vocab},
                 {"precision", precision_name(m.entry.any_model())}};
    if (!m.entry.encoder) item["decoder_layers"] = c.decoder_layers;
    if (m.lm) {
      item["context"] = c.max_positions;
    } else if (m.entry.encoder) {
      item["encoder_layers"] = c.encoder_layers;
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

Served& Handlers::find_model(const std::string& name, const char* task) {
  const std::string t = task;
  const char* endpoint = t == "translation"  ? "/v1/translate"
                         : t == "generation" ? "/v1/completions"
                                             : "/v1/embeddings";
  for (Served& s : models_)
    if (name.empty() ? std::string(s.task()) == task : s.entry.name == name) {
      if (std::string(s.task()) != task)
        throw ApiError(400, "wrong_model",
                       "model '" + name + "' is a " + s.task() + " model; " + endpoint + " takes " +
                           task + " models");
      return s;
    }
  std::string names;
  for (const Served& s : models_)
    if (std::string(s.task()) == task) names += (names.empty() ? "'" : ", '") + s.entry.name + "'";
  if (name.empty())
    throw ApiError(404, "unknown_model", std::string("this server has no ") + task + " model");
  throw ApiError(
      404, "unknown_model",
      "model '" + name + "' is not served" +
          (names.empty() ? std::string() : " (" + std::string(task) + ": " + names + ")"));
}

Handlers::Waited Handlers::wait_for(Scheduler& scheduler, const std::shared_ptr<Ticket>& ticket,
                                    Clock::time_point deadline, Client& client,
                                    const std::function<bool(const Pieces&)>& on_pieces) {
  for (;;) {
    Pieces pieces;
    const bool done = ticket->wait(std::min(deadline, Clock::now() + std::chrono::milliseconds(20)),
                                   on_pieces ? &pieces : nullptr);
    const bool sent = pieces.empty() || on_pieces(pieces);
    if (done && sent) return Waited::kDone;
    if (!sent || client.gone()) {
      scheduler.cancel(ticket);
      metrics_.cancelled();
      return Waited::kGone;
    }
    if (Clock::now() >= deadline) {
      scheduler.cancel(ticket);
      return Waited::kTimeout;
    }
  }
}

HttpResponse Handlers::embeddings(const HttpRequest& req) {
  const EmbeddingRequest r = parse_embeddings(req.body(), options_.limits);
  Served& m = find_model(r.model, "embeddings");
  const nn::EncoderOnly& model = *m.entry.encoder;
  const data::Tokenizer& tok = *m.entry.tokenizer;
  decode::EmbedOptions o;
  o.pooling = decode::parse_pooling(r.pooling, "pooling");
  o.normalize = r.normalize;
  int64_t tokens = 0;
  for (size_t i = 0; i < r.texts.size(); ++i) {
    const std::string name = r.texts.size() > 1 ? "input[" + std::to_string(i) + "]" : "input";
    try {
      tokens += static_cast<int64_t>(decode::encoder_ids(model, tok, r.texts[i], name).size());
    } catch (const Error& e) {
      throw ApiError(400, "bad_request", e.what());
    }
  }
  Tensor vectors;
  {
    const std::lock_guard<std::mutex> lock(*m.encoder_busy);
    vectors = decode::embed(model, tok, r.texts, o, "input");
  }
  metrics_.tokens(tokens, 0);
  return reply(req.version(), req.keep_alive(), http::status::ok,
               embeddings_reply(m.entry.name, vectors.to_vector<float>(), vectors.size(1), tokens));
}

std::optional<HttpResponse> Handlers::complete(const HttpRequest& req, Client& client) {
  const auto start = Clock::now();
  CompletionRequest r = parse_completion(req.body(), options_.limits);
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
  const auto deadline = start + seconds(options_.timeout_s);
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
    metrics_.tokens(0, total);
  };

  if (!r.stream) {
    const Waited w = wait_for(*m.scheduler, ticket, deadline, client);
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
  client.start_events(req.version(), options_.timeout_s);
  auto send = [&](const std::string& data) { return client.send(data); };
  std::vector<bool> streamed;  // choices some piece carried
  const Waited w = wait_for(*m.scheduler, ticket, deadline, client, [&](const Pieces& pieces) {
    for (const auto& [e, text] : pieces) {
      const size_t choice = beam ? e * n : e;  // a beam search streams its best hypothesis
      if (streamed.size() <= choice) streamed.resize(choice + 1, false);
      streamed[choice] = true;
      if (!send(completion_event(id, m.entry.name, created, choice, text, ""))) return false;
    }
    return true;
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
  client.finish();
  metrics_.count("/v1/completions", 200,
                 std::chrono::duration<double>(Clock::now() - start).count());
  return std::nullopt;
}

std::optional<HttpResponse> Handlers::translate(const HttpRequest& req, Client& client) {
  const auto start = Clock::now();
  TranslateRequest r = parse_translate(req.body(), options_.limits);
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
  const Waited w = wait_for(*m->scheduler, ticket, start + seconds(options_.timeout_s), client);
  if (w == Waited::kGone) return std::nullopt;
  if (w == Waited::kTimeout) {
    char s[32];
    std::snprintf(s, sizeof s, "%g", options_.timeout_s);
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
  metrics_.tokens(source_tokens, target_tokens);
  return reply(req.version(), req.keep_alive(), http::status::ok,
               translate_reply(m->entry.name, outs, source_tokens, target_tokens, ms));
}

}  // namespace attend::serve
