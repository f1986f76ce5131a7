// Generation with a decoder-only model (decode::Generator) and text scoring: reading prompts in
// one pass (prefill) equals the full pass and fills the cache; greedy generation
// through the cache equals the argmax of the uncached full forward pass token for token; draws
// depend on the seed and the prompt's own stream, not on the batching; prompts longer than the
// context are an error or cut from the left; beam search finds the most likely continuation
// (brute force) whatever the batching; streamed pieces add up to the text; score_text
// equals the cross-entropy summed by hand.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "data/batcher.h"
#include "data/tokenizer.h"
#include "decode/generator.h"
#include "io/safetensors.h"
#include "models/model_dir.h"
#include "ops/ops.h"
#include "util.h"

namespace attend {
namespace {

const std::string kText = "the cat sat on the mat.\nthe dog sat on the log.\n";

struct Lm {
  data::Tokenizer tok = data::Tokenizer::train_chars(kText);
  std::unique_ptr<nn::DecoderOnly> model;
  explicit Lm(int64_t context = 24, uint64_t seed = 7) {
    nn::TransformerConfig c = nn::TransformerConfig::preset("gpt-tiny");
    c.d_model = 32, c.ffn = 64, c.heads = 4, c.decoder_layers = 2, c.max_positions = context;
    c.dropout = 0;
    c.tgt_vocab = c.src_vocab = tok.vocab_size();
    model = std::make_unique<nn::DecoderOnly>(c, seed);
    model->set_training(false);
  }
};

// The next-token logits after `seq` by one full forward pass (no cache).
std::vector<float> full_next_logits(const nn::DecoderOnly& m, const std::vector<int32_t>& seq) {
  const int64_t T = static_cast<int64_t>(seq.size());
  const Tensor logits =
      m.forward(test::ids(seq, {1, T}), test::ids({static_cast<int32_t>(T)}, {1}), 0)
          .value();  // [T, V]
  return logits.slice(0, T - 1, T).to_vector<float>();
}

// The most likely next token after `seq` by one full forward pass (no cache).
int32_t full_argmax(const nn::DecoderOnly& m, const std::vector<int32_t>& seq) {
  const std::vector<float> row = full_next_logits(m, seq);
  int32_t best = -1;
  for (int32_t v = 0; v < static_cast<int32_t>(row.size()); ++v) {
    if (v == m.config().pad_id || v == m.config().unk_id || v == m.config().bos_id) continue;
    if (best < 0 || row[v] > row[best]) best = v;
  }
  return best;
}

TEST(Generator, GreedyThroughTheCacheEqualsTheFullPass) {
  const Lm lm;
  const decode::Generator gen(*lm.model, lm.tok);
  decode::GenerateOptions o;
  o.temperature = 0;
  o.max_new = 12;
  o.stop_at_eos = false;
  const std::vector<std::vector<int32_t>> prompts = {
      gen.prompt_ids("the c", "p1"), gen.prompt_ids("", "p2"), gen.prompt_ids("on the m", "p3")};
  EXPECT_EQ(prompts[1], (std::vector<int32_t>{lm.tok.bos_id()}));  // empty: beginning of text
  EXPECT_EQ(prompts[0].size(), 5u);  // a character model reads the text as it is
  const auto outs = gen.generate(prompts, o);
  for (size_t i = 0; i < prompts.size(); ++i) {
    std::vector<int32_t> seq = prompts[i];
    std::vector<int32_t> want;
    while (static_cast<int64_t>(want.size()) < o.max_new &&
           static_cast<int64_t>(seq.size()) <= gen.context()) {
      want.push_back(full_argmax(*lm.model, seq));
      seq.push_back(want.back());
    }
    EXPECT_EQ(outs[i].tokens, want) << "prompt " << i;
    EXPECT_EQ(outs[i].text, lm.tok.decode(want));
  }
}

// A padded batch of prompts read in one pass equals the full forward pass at every real
// position, and the cache it fills serves the next step as token-by-token reading would.
TEST(Generator, PrefillEqualsTheFullPassAndFillsTheCache) {
  const Lm lm;
  const nn::DecoderOnly& m = *lm.model;
  const int64_t D = m.config().d_model, T = 7;
  const std::vector<std::vector<int32_t>> p = {{2, 4, 5, 6, 7, 8, 9}, {2, 10, 11}};
  std::vector<int32_t> ids(2 * T, m.config().pad_id);
  for (size_t b = 0; b < p.size(); ++b) std::copy(p[b].begin(), p[b].end(), ids.begin() + b * T);
  nn::KvCache cache = m.make_cache();
  cache.reserve(3, 20, 0, 0);
  const Tensor lengths = test::ids({7, 3}, {2});
  const Tensor hidden = m.prefill(test::ids(ids, {2, T}), lengths, test::ids({2, 0}, {2}), cache);
  const Tensor full = m.hidden(test::ids(ids, {2, T}), lengths, 0).value();  // [2, T, D]
  for (int64_t b = 0; b < 2; ++b) {
    const int64_t len = static_cast<int64_t>(p[static_cast<size_t>(b)].size());
    EXPECT_TRUE(test::close(hidden.slice(0, b, b + 1).slice(1, 0, len),
                            full.slice(0, b, b + 1).slice(1, 0, len), 1e-5, 1e-5))
        << "row " << b;
  }
  // One step of each prompt after its prefill (slot 2 holds prompt 0, slot 0 prompt 1) equals
  // the full pass over the prompt and the new token, last position.
  nn::DecodeRows rows;
  rows.tokens = test::ids({12, 13}, {2});
  rows.positions = test::ids({7, 3}, {2});
  rows.self_slots = test::ids({2, 0}, {2});
  rows.span = 8;
  const Tensor next = m.decode_rows(rows, cache);  // [2, D]
  for (int64_t b = 0; b < 2; ++b) {
    std::vector<int32_t> seq = p[static_cast<size_t>(b)];
    seq.push_back(b == 0 ? 12 : 13);
    const int64_t n = static_cast<int64_t>(seq.size());
    const Tensor want =
        m.hidden(test::ids(seq, {1, n}), test::ids({static_cast<int32_t>(n)}, {1}), 0)
            .value()
            .reshape({n, D})
            .slice(0, n - 1, n);
    EXPECT_TRUE(test::close(next.slice(0, b, b + 1), want, 1e-5, 1e-5)) << "row " << b;
  }
  // A length past the cache is refused by attention's mask check, before any key is read.
  EXPECT_NE(test::error_of([&] {
              m.prefill(test::ids(ids, {2, T}), test::ids({99, 3}, {2}), test::ids({0, 1}, {2}),
                        cache);
            }).find("key_lengths[0] = 99 outside"),
            std::string::npos);
}

TEST(Generator, SamplingDependsOnTheSeedNotOnTheBatching) {
  const Lm lm;
  const decode::Generator gen(*lm.model, lm.tok);
  decode::GenerateOptions o;
  o.max_new = 15;
  o.top_k = 5;
  o.top_p = 0.9;
  o.seed = 11;
  const std::vector<std::vector<int32_t>> prompts = {
      gen.prompt_ids("the", "a"), gen.prompt_ids("sat on", "b"), gen.prompt_ids("dog", "c")};
  const auto together = gen.generate(prompts, o);
  // Prompt i alone draws from stream i too: generate it in a batch where it sits at index i.
  for (size_t i = 0; i < prompts.size(); ++i) {
    std::vector<std::vector<int32_t>> alone(i + 1, prompts[i]);
    const auto out = gen.generate(alone, o);
    EXPECT_EQ(out[i].tokens, together[i].tokens) << "prompt " << i;
  }
  EXPECT_EQ(gen.generate(prompts, o)[1].tokens, together[1].tokens);  // same seed, same text
  o.seed = 12;
  const auto other = gen.generate(prompts, o);
  EXPECT_TRUE(other[0].tokens != together[0].tokens || other[1].tokens != together[1].tokens ||
              other[2].tokens != together[2].tokens);
}

// The decoding session over a decoder-only model: prompts that join a running session between
// steps (greedy, sampled and beam search side by side, different lengths and budgets) get
// exactly what they get alone; a cancelled prompt gives no result and its slot serves a
// newcomer; a bad request admits nothing.
TEST(Session, PromptsJoinAndLeaveARunningSession) {
  const Lm lm(32);
  const decode::Generator gen(*lm.model, lm.tok);
  auto opts = [](int64_t max_new, double temperature, uint64_t seed) {
    decode::GenerateOptions o;
    o.max_new = max_new;
    o.temperature = temperature;
    o.top_k = 6;
    o.seed = seed;
    o.stop_at_eos = false;  // fixed lengths: every prompt runs its whole budget
    return o;
  };
  struct Case {
    std::string prompt;
    decode::GenerateOptions o;
    uint64_t stream;
  };
  decode::GenerateOptions beam3 = opts(7, 0, 1);
  beam3.beam = 3;
  const std::vector<Case> cases = {
      {"the cat", opts(12, 0, 1), 0},      {"sat on the", opts(9, 0.8, 4), 2},
      {"dog", opts(15, 1.0, 9), 1},        {"the mat.", opts(5, 0, 1), 0},
      {"on the log", opts(20, 0.7, 3), 5}, {"a dog", beam3, 0}};
  // Alone: prompt k generated by itself, drawing from its stream (index `stream` of a batch).
  std::vector<std::vector<int32_t>> alone;
  for (const Case& c : cases) {
    std::vector<std::vector<int32_t>> batch(c.stream + 1, gen.prompt_ids(c.prompt, "p"));
    alone.push_back(gen.generate(batch, c.o)[c.stream].tokens);
  }
  decode::Session session(*lm.model, &lm.tok);
  std::map<int64_t, decode::Generation> got;
  std::map<int64_t, std::string> streamed;
  auto collect = [&] {
    for (auto& [id, piece] : session.take_text()) streamed[id] += piece;
    for (auto& r : session.retire()) got[r.id] = decode::to_generation(r, 0, &lm.tok);
  };
  auto request = [&](size_t k) {
    return decode::Request{gen.prompt_ids(cases[k].prompt, "p"),
                           cases[k].o.search(),
                           cases[k].stream,
                           static_cast<int64_t>(k),
                           {},
                           true};
  };
  // Two join at once, one after 3 steps, one that is cancelled after 2, three after 6 steps;
  // all but the cancelled one hand out their text as it is drawn.
  session.admit({request(0), request(1)});
  collect();
  for (int step = 1; step <= 8; ++step) {
    session.step();
    collect();
    if (step == 2) session.admit({{gen.prompt_ids("cat", "p"), opts(30, 0.5, 2).search(), 0, 99}});
    if (step == 3) session.admit({request(2)});
    if (step == 4) {
      EXPECT_TRUE(session.cancel(99));
    }
    if (step == 6) session.admit({request(3), request(4), request(5)});
    collect();
  }
  while (!session.idle()) {
    session.step();
    collect();
  }
  EXPECT_FALSE(session.cancel(99));
  EXPECT_EQ(got.count(99), 0u);  // cancelled: no result
  ASSERT_EQ(got.size(), cases.size());
  for (size_t k = 0; k < cases.size(); ++k) {
    const auto id = static_cast<int64_t>(k);
    EXPECT_EQ(got[id].tokens, alone[k]) << "prompt " << k;
    EXPECT_EQ(got[id].text, lm.tok.decode(alone[k]));
    EXPECT_EQ(streamed[id], got[id].text);
    EXPECT_EQ(static_cast<int64_t>(got[id].tokens.size()), cases[k].o.max_new);
  }
  // A bad request admits nothing, the good one beside it included.
  decode::SearchOptions n_best = opts(3, 0, 1).search();
  n_best.n_best = 2;
  const decode::SearchOptions fine = opts(3, 0, 1).search();
  for (const auto& bad : std::vector<decode::Request>{{{}, fine, 0, 7},
                                                      {std::vector<int32_t>(40, 5), fine, 0, 7},
                                                      {{5, 99}, fine, 0, 7},
                                                      {{5}, n_best, 0, 7}}) {
    EXPECT_THROW(session.admit({{{5, 6}, fine, 0, 6}, bad}), Error);
    EXPECT_TRUE(session.idle());
  }
}

// log p(token | seq) by one full forward pass.
double full_log_prob(const nn::DecoderOnly& m, const std::vector<int32_t>& seq, int32_t token) {
  const std::vector<float> row = full_next_logits(m, seq);
  double mx = row[0], z = 0;
  for (float x : row) mx = std::max<double>(mx, x);
  for (float x : row) z += std::exp(x - mx);
  return row[static_cast<size_t>(token)] - mx - std::log(z);
}

// With a beam as wide as the vocabulary and two new tokens, beam search keeps every first token
// and so must return the most likely of all two-token continuations, found here by brute force.
TEST(Generator, BeamSearchFindsTheMostLikelyContinuation) {
  const Lm lm;
  const nn::DecoderOnly& m = *lm.model;
  const decode::Generator gen(m, lm.tok);
  decode::GenerateOptions o;
  o.beam = 16;  // the 19-token vocabulary without pad, unk and bos
  o.alpha = 0;
  o.max_new = 2;
  o.stop_at_eos = false;
  const std::vector<int32_t> prompt = gen.prompt_ids("the d", "p");
  const auto out = gen.generate({prompt}, o);
  double best = -INFINITY;
  std::vector<int32_t> want;
  for (int32_t a = 3; a < m.config().tgt_vocab; ++a) {
    const double la = full_log_prob(m, prompt, a);
    std::vector<int32_t> seq = prompt;
    seq.push_back(a);
    for (int32_t b = 3; b < m.config().tgt_vocab; ++b) {
      const double l = la + full_log_prob(m, seq, b);
      if (l > best) best = l, want = {a, b};
    }
  }
  EXPECT_EQ(out[0].tokens, want);
  EXPECT_NEAR(out[0].log_prob, best, 1e-4);
  EXPECT_EQ(out[0].text, lm.tok.decode(want));
  // A narrower beam cannot find more: its best is at most the exhaustive one.
  o.beam = 2;
  EXPECT_LE(gen.generate({prompt}, o)[0].log_prob, best + 1e-4);
}

// A prompt's beam search does not depend on what else is in the batch, and stops at the context.
TEST(Generator, BeamSearchIgnoresTheBatchingAndKeepsToTheContext) {
  const Lm lm(10);
  const decode::Generator gen(*lm.model, lm.tok);
  decode::GenerateOptions o;
  o.beam = 3;
  o.max_new = 6;
  const std::vector<std::vector<int32_t>> prompts = {
      gen.prompt_ids("the", "a"), gen.prompt_ids("sat on t", "b"), gen.prompt_ids("", "c")};
  const auto together = gen.generate(prompts, o);
  for (size_t i = 0; i < prompts.size(); ++i) {
    const auto alone = gen.generate({prompts[i]}, o);
    EXPECT_EQ(alone[0].tokens, together[i].tokens) << "prompt " << i;
    EXPECT_NEAR(alone[0].log_prob, together[i].log_prob, 1e-4) << "prompt " << i;
    EXPECT_LT(together[i].log_prob, 0);
  }
  // "sat on t" has 8 ids: with a context of 10 at most 3 tokens follow (the last is not read).
  EXPECT_LE(together[1].tokens.size(), 3u);
  EXPECT_TRUE(together[1].ended || together[1].tokens.size() == 3u);
  o.beam = 0;
  EXPECT_TRUE(test::throws_with([&] { gen.generate(prompts, o); }, {"--beam"}));
}

// A model whose weights are stored in bf16 computes what the same model computes in f32 with
// its weights rounded to bf16: the kernels widen each weight exactly, the arithmetic is f32.
TEST(Generator, Bf16WeightsComputeTheRoundedWeightsInF32) {
  if (!ops::bf16_weights_supported()) GTEST_SKIP() << "no AVX-512 on this CPU";
  const Lm rounded, stored;  // the same weights (seed 7)
  for (const auto& [name, v] : rounded.model->named_parameters())
    if (v.value().dim() == 2) v.mutable_value() = v.value().to(DType::kBF16).to(DType::kF32);
  stored.model->store_weights(DType::kBF16);
  int64_t matrices = 0;
  for (const auto& [name, v] : stored.model->named_parameters()) {
    EXPECT_EQ(v.value().dtype(), v.value().dim() == 2 ? DType::kBF16 : DType::kF32) << name;
    matrices += v.value().dim() == 2;
  }
  EXPECT_EQ(matrices, 1 + 1 + 2 * 6);  // tokens, positions, 2 layers x (q, k, v, out, fc1, fc2)
  const std::vector<int32_t> ids = {2, 4, 5, 6, 7, 8, 9, 10, 11, 0, 2, 12, 13, 0, 0, 0, 0, 0};
  const Tensor lengths = test::ids({9, 3}, {2});
  const Tensor want = rounded.model->forward(test::ids(ids, {2, 9}), lengths, 0).value();
  const Tensor got = stored.model->forward(test::ids(ids, {2, 9}), lengths, 0).value();
  EXPECT_EQ(got.dtype(), DType::kF32);
  EXPECT_TRUE(test::close(got.slice(0, 0, 12), want.slice(0, 0, 12), 1e-5, 1e-5));
  decode::GenerateOptions o;
  o.temperature = 0;
  o.max_new = 12;
  o.stop_at_eos = false;
  const decode::Generator a(*rounded.model, rounded.tok), b(*stored.model, stored.tok);
  const std::vector<std::vector<int32_t>> p = {a.prompt_ids("the c", "p"), a.prompt_ids("", "q")};
  const auto ga = a.generate(p, o), gb = b.generate(p, o);
  EXPECT_EQ(ga[0].tokens, gb[0].tokens);
  EXPECT_EQ(ga[1].tokens, gb[1].tokens);
  EXPECT_TRUE(test::throws_with([&] { stored.model->store_weights(DType::kI8); },
                                {"already stored in bf16"}));
}

// int8 weights (store_weights(kI8)): every linear weight and the tied output projection become
// int8 with per-row scales; logits track the f32 model within the error that per-row int8
// quantization implies; the quantized parameters saved and loaded into a fresh int8 model give
// the same logits bit for bit; files and models that disagree on int8 are clear errors.
// Tolerance: a row quantized symmetrically to 127 levels has a rounding error uniform in half a
// step, rms step/sqrt(12) = max/(127 sqrt(12)), against values of rms ~max/3 (Gaussian-like rows):
// ~0.7% per operand, ~1% per product (two operands in quadrature). A logit passes through ~6
// products in series here (2 layers x attention and FFN, and the projection), whose relative
// errors add in quadrature: ~2.5% of the logits' rms; the test allows 6%.
TEST(Generator, Int8WeightsTrackTheF32Model) {
  const Lm f32, q8;  // the same weights (seed 7)
  q8.model->store_weights(DType::kI8);
  int64_t int8 = 0, scales = 0;
  for (const auto& [name, v] : q8.model->named_parameters()) {
    int8 += v.value().dtype() == DType::kI8;
    scales += name.ends_with(".weight_scale");
  }
  EXPECT_EQ(int8, 1 + 2 * 6);  // the tied projection, 2 layers x (q, k, v, out, fc1, fc2)
  EXPECT_EQ(scales, int8);
  const std::vector<int32_t> ids = {2, 4, 5, 6, 7, 8, 9, 10, 11, 0, 2, 12, 13, 0, 0, 0, 0, 0};
  const Tensor lengths = test::ids({9, 3}, {2});
  const auto want = f32.model->forward(test::ids(ids, {2, 9}), lengths, 0).value().slice(0, 0, 12);
  const auto got = q8.model->forward(test::ids(ids, {2, 9}), lengths, 0).value().slice(0, 0, 12);
  const auto w = want.to_vector<float>(), g = got.to_vector<float>();
  double err = 0, norm = 0;
  for (size_t i = 0; i < w.size(); ++i) {
    err += (g[i] - w[i]) * (g[i] - w[i]);
    norm += w[i] * w[i];
  }
  EXPECT_LT(std::sqrt(err / norm), 0.06);
  EXPECT_GT(std::sqrt(err / norm), 1e-4);  // the int8 path did run

  // Saved and loaded into a fresh int8 model: the same logits exactly.
  const std::string file = test::tmp_path("Generator", "int8.safetensors");
  std::vector<std::pair<std::string, Tensor>> params;
  for (const auto& [name, v] : q8.model->named_parameters()) params.emplace_back(name, v.value());
  io::save_safetensors(file, params, {});
  const Lm loaded(24, 99);  // other weights, replaced by the file's
  loaded.model->store_weights(DType::kI8);
  models::load_weights(file, *loaded.model);
  const auto again = loaded.model->forward(test::ids(ids, {2, 9}), lengths, 0).value();
  EXPECT_EQ(again.slice(0, 0, 12).to_vector<float>(), g);

  // An int8 file given to an f32 model; an int8 file without one of its scales.
  EXPECT_TRUE(test::throws_with([&] { models::load_weights(file, *f32.model); },
                                {file, "int8 model", "needs fp32 weights"}));
  std::vector<std::pair<std::string, Tensor>> no_scale;
  std::string dropped;
  for (const auto& [name, t] : params)
    if (dropped.empty() && name.ends_with("fc2.weight_scale"))
      dropped = name;
    else
      no_scale.emplace_back(name, t);
  ASSERT_FALSE(dropped.empty());
  io::save_safetensors(file, no_scale, {});
  EXPECT_TRUE(test::throws_with([&] { models::load_weights(file, *loaded.model); },
                                {file, "missing the int8 scales '" + dropped + "'"}));
  EXPECT_TRUE(test::throws_with([&] { q8.model->store_weights(DType::kBF16); },
                                {"already stored in int8"}));
}

TEST(Generator, LongPromptsAreAnErrorOrCutFromTheLeft) {
  const Lm lm(8);
  const decode::Generator gen(*lm.model, lm.tok);
  decode::GenerateOptions o;
  o.max_new = 5;
  const std::vector<int32_t> p = gen.prompt_ids("the cat sat on", "p");  // 14 > 8
  EXPECT_TRUE(test::throws_with([&] { gen.generate({p}, o); },
                                {"prompt 1", "14 tokens", "context is 8", "--truncate left"}));
  o.truncate_left = true;
  const auto out = gen.generate({p}, o);
  EXPECT_EQ(out[0].cut, 6);
  EXPECT_EQ(out[0].prompt_tokens, 8);
  EXPECT_EQ(out[0].tokens.size(), 1u);  // the cut prompt fills the context: one prediction left
  EXPECT_TRUE(test::throws_with([&] { gen.prompt_ids("a\xff", "prompts.txt:3"); },
                                {"prompts.txt:3", "invalid UTF-8"}));
  o.top_p = 0;
  EXPECT_TRUE(test::throws_with([&] { gen.generate({p}, o); }, {"--top-p"}));
}

TEST(Generator, StreamedPiecesAddUpToTheText) {
  const Lm lm;
  const decode::Generator gen(*lm.model, lm.tok);
  decode::GenerateOptions o;
  o.max_new = 10;
  std::vector<std::string> streamed(2);
  const auto outs = gen.generate({gen.prompt_ids("the", "a"), gen.prompt_ids("log", "b")}, o,
                                 [&](size_t i, const std::string& piece) { streamed[i] += piece; });
  EXPECT_EQ(streamed[0], outs[0].text);
  EXPECT_EQ(streamed[1], outs[1].text);
}

TEST(Generator, ScoreTextIsTheSummedCrossEntropyOfItsWindows) {
  const Lm lm;
  const int64_t block = 9;
  const decode::LmScore s = decode::score_text(*lm.model, lm.tok, kText, block, 40);
  const std::vector<int32_t> stream = data::lm_stream(lm.tok, kText);
  EXPECT_EQ(stream.size(), kText.size() + 1);  // BOS, then one id per character
  EXPECT_EQ(s.tokens, static_cast<int64_t>(stream.size()) - 1);
  EXPECT_EQ(s.windows, (s.tokens + block - 1) / block);
  // By hand, one window at a time, in double.
  double nll = 0;
  for (size_t start = 0; start + 1 < stream.size(); start += block) {
    const size_t end = std::min(stream.size(), start + block + 1);
    const std::vector<int32_t> in(stream.begin() + start, stream.begin() + end - 1);
    const int64_t T = static_cast<int64_t>(in.size());
    const Tensor logits =
        lm.model->forward(test::ids(in, {1, T}), test::ids({static_cast<int32_t>(T)}, {1}), 0)
            .value();
    for (int64_t t = 0; t < T; ++t) {
      const std::vector<float> row = logits.slice(0, t, t + 1).to_vector<float>();
      double mx = row[0], z = 0;
      for (float x : row) mx = std::max<double>(mx, x);
      for (float x : row) z += std::exp(x - mx);
      nll -= row[stream[start + t + 1]] - mx - std::log(z);
    }
  }
  EXPECT_NEAR(s.nll, nll, 1e-4 * nll);
  EXPECT_TRUE(test::throws_with([&] { decode::score_text(*lm.model, lm.tok, kText, 25); },
                                {"--block", "1..24"}));
}

}  // namespace
}  // namespace attend
