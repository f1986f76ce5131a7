// The training loop (see trainer.h).
#include "train/trainer.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>

#include "core/allocator.h"
#include "core/rng.h"
#include "core/thread_pool.h"
#include "data/batcher.h"
#include "data/corpus.h"
#include "data/numbers.h"
#include "data/tokenizer.h"
#include "decode/translator.h"
#include "eval/bleu.h"
#include "io/file.h"
#include "models/config.h"
#include "models/model_dir.h"
#include "train/checkpoint.h"
#include "train/options.h"
#include "train/schedule.h"

namespace attend::train {
namespace fs = std::filesystem;
namespace {

std::atomic<int> g_signal{0};
extern "C" void on_signal(int sig) {
  g_signal.store(sig);
  std::signal(sig, SIG_DFL);  // a second signal stops at once
}

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

std::string hms(double s) {
  const long t = static_cast<long>(s);
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
  return buf;
}

struct Corpus {
  std::vector<std::string> train_src, train_tgt, valid_src, valid_tgt;
};

Corpus load_corpus(const io::Config& c) {
  Corpus out;
  const std::string gen = c.get_string("data.generate");
  if (gen != "none") {
    ATTEND_CHECK(gen == "numbers-en" || gen == "numbers-de",
                 "data.generate: expected none, numbers-en or numbers-de, got '{}'", gen);
    const auto lang =
        gen == "numbers-en" ? data::NumberLanguage::kEnglish : data::NumberLanguage::kGerman;
    const uint64_t seed = static_cast<uint64_t>(c.get_int("train.seed"));
    const int64_t n_train = c.get_int("data.generate_train"),
                  n_valid = c.get_int("data.generate_valid");
    const int64_t max = c.get_int("data.generate_max");
    // Validation numbers come from a disjoint index range of the same generator.
    for (const auto& p : data::generate_numbers(seed, n_train, 0, max, lang)) {
      out.train_src.push_back(p.digits);
      out.train_tgt.push_back(p.words);
    }
    // Held out: validation numbers that also occur in training are dropped.
    const std::set<std::string> seen(out.train_src.begin(), out.train_src.end());
    for (const auto& p : data::generate_numbers(seed + 7919, n_valid, 0, max, lang)) {
      if (seen.count(p.digits)) continue;
      out.valid_src.push_back(p.digits);
      out.valid_tgt.push_back(p.words);
    }
    return out;
  }
  ATTEND_CHECK(c.is_set("data.train_src") && c.is_set("data.train_tgt"),
               "data.train_src and data.train_tgt must name the training corpus (or set "
               "data.generate)");
  const std::string bad = c.get_string("data.bad_utf8");
  ATTEND_CHECK(bad == "error" || bad == "skip", "data.bad_utf8: expected error or skip, got '{}'",
               bad);
  const auto policy = bad == "skip" ? data::BadUtf8::kSkip : data::BadUtf8::kError;
  auto tr =
      data::read_parallel(c.get_string("data.train_src"), c.get_string("data.train_tgt"), policy);
  std::printf("data: %lld training pairs read", static_cast<long long>(tr.lines));
  if (tr.skipped_empty || tr.skipped_utf8)
    std::printf(" (skipped: %lld empty, %lld invalid UTF-8)",
                static_cast<long long>(tr.skipped_empty), static_cast<long long>(tr.skipped_utf8));
  std::printf("\n");
  out.train_src = std::move(tr.src);
  out.train_tgt = std::move(tr.tgt);
  if (c.is_set("data.valid_src") || c.is_set("data.valid_tgt")) {
    ATTEND_CHECK(c.is_set("data.valid_src") && c.is_set("data.valid_tgt"),
                 "data.valid_src and data.valid_tgt must be given together");
    auto va =
        data::read_parallel(c.get_string("data.valid_src"), c.get_string("data.valid_tgt"), policy);
    out.valid_src = std::move(va.src);
    out.valid_tgt = std::move(va.tgt);
  }
  const int64_t cap = c.get_int("data.valid_max_sentences");
  if (cap > 0 && static_cast<int64_t>(out.valid_src.size()) > cap) {
    out.valid_src.resize(cap);
    out.valid_tgt.resize(cap);
  }
  return out;
}

std::vector<data::Example> encode_pairs(const data::Tokenizer& tok, const nn::TransformerConfig& mc,
                                        const std::vector<std::string>& src,
                                        const std::vector<std::string>& tgt, int64_t max_len,
                                        int64_t* skipped) {
  std::vector<data::Example> out;
  out.reserve(src.size());
  for (size_t i = 0; i < src.size(); ++i) {
    data::Example e{mc.source(tok.encode(src[i])), tok.encode(tgt[i])};
    if (max_len > 0 && (static_cast<int64_t>(e.src.size()) > max_len ||
                        static_cast<int64_t>(e.tgt.size()) + 1 > max_len)) {
      if (skipped) ++*skipped;
      continue;
    }
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace

Trainer::Trainer(nn::EncoderDecoder& model, const data::Tokenizer& tokenizer, const TrainOptions& o)
    : model_(model),
      tokenizer_(tokenizer),
      options_(o),
      schedule_{o.schedule, o.lr, o.warmup, model.config().d_model},
      gradients_(model.named_parameters()),
      adam_(model.named_parameters(),
            {0.0, o.adam_beta1, o.adam_beta2, o.adam_eps, o.weight_decay}) {
  if (o.ema_decay > 0) ema_ = std::make_unique<Ema>(model.named_parameters(), o.ema_decay);
  model_.set_training(true);
}

void Trainer::resume(const std::string& dir) {
  state_ = load_state(dir);
  load_training_weights(dir, model_);
  load_optimizer(dir, adam_);
  if (ema_) {  // the average starts from the resumed weights unless the checkpoint kept one
    ema_ = std::make_unique<Ema>(model_.named_parameters(), options_.ema_decay);
    if (state_.ema) load_ema(dir, *ema_);
  }
}

StepResult Trainer::step(const std::vector<const data::Batch*>& batches, int64_t tokens) {
  ATTEND_CHECK(!batches.empty(), "Trainer::step: no batches");
  const ops::CrossEntropyConfig ce{options_.label_smoothing, data::kPadId};
  gradients_.zero();
  double loss_sum = 0;
  int64_t own_tokens = 0;
  for (size_t a = 0; a < batches.size(); ++a) {
    const data::Batch& b = *batches[a];
    {
      ArenaScope scope(&arena_);
      ag::Tape tape;
      ag::Variable loss;
      const uint64_t dropout_stream = mix_stream(
          mix_stream(options_.seed, static_cast<uint64_t>(state_.step)), static_cast<uint64_t>(a));
      {
        ag::TapeScope rec(&tape);
        const ag::Variable logits =
            model_.forward(b.src, b.src_lengths, b.tgt_in, b.tgt_lengths, dropout_stream);
        loss = ag::cross_entropy(logits, b.tgt_out, ce, ops::Reduction::kSum);
      }
      loss_sum += loss.value().item();
      tape.backward(loss);
    }
    arena_.reset();
    own_tokens += b.tgt_tokens;
  }
  StepResult r;
  r.tokens = tokens > 0 ? tokens : own_tokens;
  r.grad_norm = gradients_.scale_and_clip(1.0 / static_cast<double>(r.tokens), options_.clip_norm);
  r.lr = schedule_.at(state_.step + 1);
  adam_.set_lr(r.lr);
  adam_.step();
  ++state_.step;
  if (ema_) ema_->update(state_.step);
  state_.target_tokens += own_tokens;
  r.loss = loss_sum / static_cast<double>(r.tokens);
  return r;
}

Validation Trainer::validate(const ValidationSet& set) {
  const auto t0 = Clock::now();
  if (ema_) ema_->swap();  // validate the averaged weights
  model_.set_training(false);
  Validation v;
  double nll = 0;
  int64_t tokens = 0;
  {
    Arena arena;
    for (const auto& rows : data::sorted_plan(set.examples, options_.max_tokens)) {
      ArenaScope scope(&arena);
      const data::Batch b = data::make_batch(set.examples, rows);
      const ag::Variable logits = model_.forward(b.src, b.src_lengths, b.tgt_in, b.tgt_lengths, 0);
      const auto out =
          ops::cross_entropy(logits.value(), b.tgt_out, {0.0, data::kPadId}, ops::Reduction::kSum);
      nll += out.loss.item();
      tokens += b.tgt_tokens;
      arena.reset();
    }
  }
  v.loss = nll / static_cast<double>(std::max<int64_t>(tokens, 1));
  v.ppl = std::exp(v.loss);
  if (options_.valid_bleu) {
    decode::TranslateOptions o;
    o.search.beam = options_.valid_beam;
    o.search.alpha = options_.valid_alpha;
    o.batch_tokens = options_.valid_max_tokens;
    o.max_input_tokens = std::numeric_limits<int64_t>::max();  // validation cuts nothing
    const auto outs =
        decode::Translator(model_, tokenizer_).translate(set.sources, o, "validation");
    std::vector<std::string> hyps;
    int64_t exact = 0;
    for (size_t i = 0; i < outs.size(); ++i) {
      hyps.push_back(outs[i][0].text);
      exact += hyps.back() == set.references[i];
    }
    v.bleu = eval::corpus_bleu(hyps, {set.references}).score;
    v.exact = static_cast<double>(exact) / static_cast<double>(std::max<size_t>(outs.size(), 1));
  }
  model_.set_training(true);
  if (ema_) ema_->swap();
  v.seconds = seconds_since(t0);
  return v;
}

void Trainer::save(const std::string& dir, const std::string& config_json, bool with_optimizer) {
  if (with_optimizer) {
    save_checkpoint(dir, model_, &adam_, config_json, tokenizer_, state_, ema_.get());
    return;
  }
  // A model-only checkpoint (best/) holds the weights validation saw: the average, if any.
  if (ema_) ema_->swap();
  save_checkpoint(dir, model_, nullptr, config_json, tokenizer_, state_);
  if (ema_) ema_->swap();
}

namespace {

// train.jsonl keeps one record per line; on resume, records after the checkpoint's step go
// (the uninterrupted run would not have written them yet).
void truncate_log(const std::string& file, int64_t step) {
  if (!io::file_exists(file)) return;
  std::ifstream in(file);
  std::string kept, line;
  while (std::getline(in, line)) {
    try {
      const auto j = nlohmann::json::parse(line);
      if (j.value("step", int64_t{0}) <= step) kept += line + "\n";
    } catch (const nlohmann::json::exception&) {
      break;  // a torn last line from a killed run
    }
  }
  io::write_file_atomic(file, kept);
}

}  // namespace

TrainResult train(const io::Config& c, bool resume) {
  const TrainOptions o = TrainOptions::from_config(c);
  if (o.threads > 0) set_num_threads(o.threads);
  const std::string& out = o.out;
  std::error_code ec;
  fs::create_directories(fs::path(out) / "checkpoints", ec);
  ATTEND_CHECK(!ec, "train.out: cannot create {}: {}", out, ec.message());
  if (!resume && !models::last_checkpoint(out).empty()) {
    ATTEND_CHECK(o.overwrite,
                 "train.out: {} already holds a run (continue it with --resume, or start afresh "
                 "with --train.overwrite true, which deletes its checkpoints)",
                 out);
    fs::remove_all(fs::path(out) / "checkpoints", ec);
    fs::remove_all(fs::path(out) / "best", ec);
    fs::create_directories(fs::path(out) / "checkpoints", ec);
  }
  const std::string ckpt = resume ? models::last_checkpoint(out) : "";
  ATTEND_CHECK(!resume || !ckpt.empty(), "--resume: {} holds no checkpoint to resume from", out);
  if (resume) models::verify_model_dir(ckpt, true);

  // Model keys are checked before any data is read (vocabulary size not known yet).
  models::model_config(c, 8).validate();
  // Data and vocabulary.
  const Corpus corpus = load_corpus(c);
  data::Tokenizer tok;
  if (resume) {
    tok = models::read_tokenizer(ckpt);
  } else if (c.is_set("vocab.model")) {
    tok = data::Tokenizer::load(c.get_string("vocab.model"));
  } else {
    data::TokenizerOptions to;
    to.vocab_size = c.get_int("vocab.size");
    to.model_type = c.get_string("vocab.type");
    to.split_digits = c.get_bool("vocab.split_digits");
    to.max_sentences = c.get_int("vocab.max_sentences");
    to.seed = o.seed;
    std::vector<std::string> all = corpus.train_src;
    all.insert(all.end(), corpus.train_tgt.begin(), corpus.train_tgt.end());
    const auto t0 = Clock::now();
    tok = data::Tokenizer::train(all, to);
    std::printf("vocab: trained a %s model of %lld pieces on %zu sentences in %.1fs\n",
                to.model_type.c_str(), static_cast<long long>(tok.vocab_size()), all.size(),
                seconds_since(t0));
  }
  tok.save((fs::path(out) / "tokenizer.model").string());
  if (c.get_string("data.generate") != "none") {  // the held-out set, for inspection and scoring
    std::string src, ref;
    for (size_t i = 0; i < corpus.valid_src.size(); ++i) {
      src += corpus.valid_src[i] + "\n";
      ref += corpus.valid_tgt[i] + "\n";
    }
    io::write_file_atomic((fs::path(out) / "valid.src").string(), src);
    io::write_file_atomic((fs::path(out) / "valid.ref").string(), ref);
  }
  int64_t too_long = 0;
  const int64_t max_len = c.get_int("data.max_length");
  const nn::TransformerConfig model_cfg = models::model_config(c, 0, &tok);
  const auto train_set =
      encode_pairs(tok, model_cfg, corpus.train_src, corpus.train_tgt, max_len, &too_long);
  ValidationSet valid{encode_pairs(tok, model_cfg, corpus.valid_src, corpus.valid_tgt, 0, nullptr),
                      corpus.valid_src, corpus.valid_tgt};
  std::printf(
      "data: %zu training pairs (%lld longer than %lld subwords skipped), %zu validation pairs\n",
      train_set.size(), static_cast<long long>(too_long), static_cast<long long>(max_len),
      valid.examples.size());
  ATTEND_CHECK(!train_set.empty(), "data: no training pairs left after filtering");

  // Model and trainer.
  nn::EncoderDecoder model(model_cfg, o.seed);
  Trainer trainer(model, tok, o);
  TrainerState& state = trainer.state();
  if (resume) trainer.resume(ckpt);
  if (o.ema_decay > 0) {
    std::printf("ema: validation and checkpoints use a moving average of the weights, decay %g%s\n",
                o.ema_decay, resume && !state.ema ? " (starting from the resumed weights)" : "");
  } else if (resume && state.ema) {
    std::printf("ema: train.ema_decay is 0, so the checkpoint's moving average is dropped\n");
  }
  const auto& mc = model.config();
  std::printf(
      "model: %lld+%lld layers, d_model %lld, FFN %lld, %lld heads, vocab %lld, %lld parameters; "
      "%d threads\n",
      static_cast<long long>(mc.encoder_layers), static_cast<long long>(mc.decoder_layers),
      static_cast<long long>(mc.d_model), static_cast<long long>(mc.ffn),
      static_cast<long long>(mc.heads), static_cast<long long>(mc.src_vocab),
      static_cast<long long>(model.num_parameters()), num_threads());
  if (resume)
    std::printf("resume: %s (step %lld, epoch %lld, batch %lld)\n", ckpt.c_str(),
                static_cast<long long>(state.step), static_cast<long long>(state.epoch),
                static_cast<long long>(state.batch_index));

  const std::string config_json = c.to_json();
  io::write_file_atomic((fs::path(out) / "config.json").string(), config_json);
  const std::string log_file = (fs::path(out) / "train.jsonl").string();
  if (resume)
    truncate_log(log_file, state.step);
  else
    io::write_file_atomic(log_file, "");
  std::ofstream log(log_file, std::ios::app);
  auto record = [&](const nlohmann::ordered_json& j) {
    log << j.dump() << "\n";
    log.flush();
  };

  std::vector<std::string> saved = models::list_checkpoints(out);  // oldest first
  auto save = [&] {
    char name[32];
    std::snprintf(name, sizeof(name), "step-%08lld", static_cast<long long>(state.step));
    trainer.save((fs::path(out) / "checkpoints" / name).string(), config_json, true);
    io::write_file_atomic((fs::path(out) / "checkpoints" / "last").string(),
                          std::string(name) + "\n");
    if (std::find(saved.begin(), saved.end(), name) == saved.end()) saved.push_back(name);
    while (static_cast<int64_t>(saved.size()) > o.keep_checkpoints) {
      fs::remove_all(fs::path(out) / "checkpoints" / saved.front(), ec);
      saved.erase(saved.begin());
    }
  };

  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  g_signal.store(0);

  data::BatchStream stream(train_set, o.max_tokens, o.seed, state.epoch, state.batch_index);
  const bool tty = isatty(fileno(stdout));
  const auto start = Clock::now();
  const double elapsed_before = state.elapsed_seconds;
  const int64_t first_step = state.step;
  int64_t window_tokens = 0, window_src_tokens = 0, window_steps = 0;
  double window_loss = 0;
  auto window_start = Clock::now();
  TrainResult result;
  bool stop = false, saved_now = false;
  std::vector<data::BatchStream::Item> items(static_cast<size_t>(o.accumulate));
  std::vector<const data::Batch*> batches;

  while (!stop && state.step < o.max_steps) {
    batches.clear();
    for (auto& item : items) {
      item = stream.next();
      batches.push_back(&item.batch);
      window_src_tokens += item.batch.src_tokens;
      state.epoch = item.epoch;
      state.batch_index = item.index + 1;
      if (state.batch_index >= item.epoch_batches) {
        ++state.epoch;
        state.batch_index = 0;
      }
    }
    const StepResult r = trainer.step(batches);
    result.last_loss = r.loss;
    window_loss += r.loss;
    window_tokens += r.tokens;
    ++window_steps;
    saved_now = false;
    state.elapsed_seconds = elapsed_before + seconds_since(start);

    if (o.max_epochs > 0 && state.epoch >= o.max_epochs) stop = true;
    if (o.max_minutes > 0 && state.elapsed_seconds >= o.max_minutes * 60.0) stop = true;
    if (g_signal.load() != 0) {
      stop = true;
      result.interrupted = true;
    }

    const bool log_now = state.step % o.log_every == 0 || stop || state.step == o.max_steps;
    if (log_now || tty) {
      const double wsec = std::max(1e-9, seconds_since(window_start));
      const double tps = static_cast<double>(window_tokens) / wsec;
      const double per_step = seconds_since(start) / static_cast<double>(state.step - first_step);
      const double eta = per_step * static_cast<double>(o.max_steps - state.step);
      char line[256];
      std::snprintf(
          line, sizeof(line),
          "step %lld/%lld  epoch %lld  loss %.4f  lr %.3e  %.0f tgt tok/s  %s elapsed  ETA %s",
          static_cast<long long>(state.step), static_cast<long long>(o.max_steps),
          static_cast<long long>(state.epoch + 1), window_loss / static_cast<double>(window_steps),
          r.lr, tps, hms(state.elapsed_seconds).c_str(), hms(eta).c_str());
      if (log_now) {
        std::printf("%s%s\n", tty ? "\r\033[K" : "", line);
        record({{"step", state.step},
                {"epoch", state.epoch + 1},
                {"loss", window_loss / static_cast<double>(window_steps)},
                {"last_loss", r.loss},
                {"lr", r.lr},
                {"grad_norm", r.grad_norm},
                {"tgt_tokens_per_s", tps},
                {"src_tgt_tokens_per_s",
                 static_cast<double>(window_tokens + window_src_tokens) / wsec},
                {"elapsed_s", state.elapsed_seconds}});
        window_loss = 0;
        window_tokens = window_src_tokens = window_steps = 0;
        window_start = Clock::now();
      } else {
        std::printf("\r\033[K%s", line);
      }
      std::fflush(stdout);
    }

    // A signal only saves: validating there would add a record the uninterrupted run lacks.
    const bool last = (stop && !result.interrupted) || state.step == o.max_steps;
    if (!valid.examples.empty() && o.valid_every > 0 && (state.step % o.valid_every == 0 || last)) {
      const Validation v = trainer.validate(valid);
      ++state.validations;
      const bool by_bleu = o.select_by_bleu();
      const double score = by_bleu ? v.bleu : v.loss;
      const bool better =
          !state.has_best || (by_bleu ? score > state.best_metric : score < state.best_metric);
      if (better) {
        state.best_metric = score;
        state.has_best = true;
        state.bad_validations = 0;
        trainer.save((fs::path(out) / "best").string(), config_json, false);
      } else {
        ++state.bad_validations;
      }
      std::printf("%svalid step %lld: loss %.4f  ppl %.2f", tty ? "\r\033[K" : "",
                  static_cast<long long>(state.step), v.loss, v.ppl);
      if (v.bleu >= 0) std::printf("  BLEU %.2f  exact %.1f%%", v.bleu, 100.0 * v.exact);
      std::printf("  (%.1fs)%s\n", v.seconds, better ? "  new best" : "");
      nlohmann::ordered_json j = {
          {"step", state.step}, {"valid_loss", v.loss}, {"valid_ppl", v.ppl}};
      if (v.bleu >= 0) {
        j["valid_bleu"] = v.bleu;
        j["valid_exact"] = v.exact;
      }
      j["best"] = better;
      record(j);
      if (o.patience > 0 && state.bad_validations >= o.patience) {
        std::printf("early stopping: %lld validations without improvement\n",
                    static_cast<long long>(state.bad_validations));
        stop = true;
      }
    }
    if ((o.save_every > 0 && state.step % o.save_every == 0) || stop || state.step == o.max_steps) {
      save();
      saved_now = true;
    }
  }
  if (!saved_now && state.step > first_step) save();
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  if (result.interrupted)
    std::printf("interrupted by signal %d: checkpoint saved at step %lld; continue with --resume\n",
                g_signal.load(), static_cast<long long>(state.step));
  result.steps = state.step;
  result.has_best = state.has_best;
  result.best_metric = state.best_metric;
  return result;
}

}  // namespace attend::train
