// The training loop (see trainer.h).
#include "train/trainer.h"

#include <pthread.h>
#include <unistd.h>

#include <algorithm>
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
#include "core/context.h"
#include "core/cpu_info.h"
#include "core/rng.h"
#include "core/thread_pool.h"
#include "data/batcher.h"
#include "data/corpus.h"
#include "data/numbers.h"
#include "data/tokenizer.h"
#include "decode/generator.h"
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

// Ctrl-C and SIGTERM while training: blocked in every thread and taken synchronously by one
// watcher thread (sigwait), which sets g_signal; the training loop checkpoints and stops at the
// next step boundary, and a second signal ends the process at once. No handler then runs on a
// compute thread: oneDNN's JIT sgemm kernels (Debian's 2.6.3) corrupt the heap when a signal
// frame lands on their stack (SIGTERM during `attend train` aborted 2 runs in 8 that way;
// 0 in 10 with OpenBLAS, 0 in 10 with this watcher). Construct it before any other thread
// starts (they inherit the mask); on_signal stays installed in case a thread started earlier
// receives the signal.
class SignalWatcher {
 public:
  SignalWatcher() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    sigaddset(&set_, SIGUSR2);  // wakes the watcher when training ends
    pthread_sigmask(SIG_BLOCK, &set_, &previous_);
    g_signal.store(0);
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    thread_ = std::thread([this] {
      for (;;) {
        int sig = 0;
        if (sigwait(&set_, &sig) != 0 || sig == SIGUSR2) return;
        if (g_signal.load() != 0) std::_Exit(128 + sig);  // the second one: stop now
        g_signal.store(sig);
      }
    });
  }
  ~SignalWatcher() {
    pthread_kill(thread_.native_handle(), SIGUSR2);
    thread_.join();
    std::signal(SIGINT, SIG_DFL);
    std::signal(SIGTERM, SIG_DFL);
    pthread_sigmask(SIG_SETMASK, &previous_, nullptr);
  }
  SignalWatcher(const SignalWatcher&) = delete;
  SignalWatcher& operator=(const SignalWatcher&) = delete;

 private:
  sigset_t set_, previous_;
  std::thread thread_;
};

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

// A language model's text: training and validation parts.
struct LmText {
  std::string train, valid;
};

// The byte offset of character `k` of valid UTF-8 text (its size when k is past the end).
size_t char_offset(const std::string& s, int64_t k) {
  int64_t seen = 0;
  for (size_t i = 0; i < s.size(); ++i)
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80 && seen++ == k) return i;
  return s.size();
}

int64_t char_count(const std::string& s) {
  int64_t n = 0;
  for (char ch : s) n += (static_cast<unsigned char>(ch) & 0xC0) != 0x80;
  return n;
}

LmText load_lm_text(const io::Config& c, nn::Arch arch) {
  ATTEND_CHECK(c.is_set("data.train_text"),
               "model.arch {} trains on text: set data.train_text (data.train_src and "
               "data.train_tgt are for translation)",
               nn::arch_name(arch));
  const std::string bad = c.get_string("data.bad_utf8");
  ATTEND_CHECK(bad == "error" || bad == "skip", "data.bad_utf8: expected error or skip, got '{}'",
               bad);
  const auto policy = bad == "skip" ? data::BadUtf8::kSkip : data::BadUtf8::kError;
  data::Text t = data::read_text(c.get_string("data.train_text"), policy);
  std::printf("data: %lld lines of text read", static_cast<long long>(t.lines));
  if (t.skipped_utf8)
    std::printf(" (%lld with invalid UTF-8 left out)", static_cast<long long>(t.skipped_utf8));
  std::printf("\n");
  LmText out;
  if (c.is_set("data.valid_text")) {
    out.train = std::move(t.text);
    out.valid = data::read_text(c.get_string("data.valid_text"), policy).text;
    return out;
  }
  const double f = c.get_float("data.valid_fraction");
  ATTEND_CHECK(f >= 0 && f < 1, "data.valid_fraction: expected a share in [0, 1), got {}", f);
  // nanoGPT's split: the first (1 - f) of the characters train, the rest validates.
  const int64_t n = char_count(t.text);
  const size_t cut = char_offset(t.text, static_cast<int64_t>(static_cast<double>(n) * (1 - f)));
  out.train = t.text.substr(0, cut);
  out.valid = t.text.substr(cut);
  return out;
}

}  // namespace

Trainer::Trainer(nn::Model& model, const data::Tokenizer& tokenizer, const TrainOptions& o,
                 dist::Communicator* comm)
    : model_(model),
      tokenizer_(tokenizer),
      options_(o),
      schedule_{o.schedule, o.lr, o.warmup, model.config().d_model, o.max_steps},
      gradients_(model.named_parameters()),
      adam_(model.named_parameters(),
            {0.0, o.adam_beta1, o.adam_beta2, o.adam_eps, o.weight_decay}) {
  if (comm && comm->size() > 1) {
    comm_ = comm;
    std::vector<std::pair<int64_t, int64_t>> ranges;
    for (size_t i = 0; i < gradients_.size(); ++i)
      ranges.emplace_back(gradients_.offset(i), gradients_.view(i).numel());
    reducer_ =
        std::make_unique<dist::GradientReducer>(*comm, gradients_.flat(), std::move(ranges),
                                                static_cast<int64_t>(o.bucket_mb * 1024 * 1024));
    gradients_.on_ready([this](size_t i) { reducer_->ready(i); });
    broadcast_parameters();
  }
  if (o.precision == DType::kBF16) {
    const CpuInfo& cpu = cpu_info();
    ATTEND_CHECK(
        ops::bf16_products_native(),
        "train.precision bf16: this CPU has neither AMX-BF16{} nor AVX-512 BF16 "
        "(avx512_bf16), so bf16 products would run slower than fp32 (oneDNN's kernel "
        "here: {}); use train.precision fp32",
        cpu.amx_bf16 && !cpu.amx_permitted ? " (present, but the OS denies the tile state)" : "",
        ops::bf16_products_kernel());
  }
  if (o.ema_decay > 0) ema_ = std::make_unique<Ema>(model.named_parameters(), o.ema_decay);
  if (dynamic_cast<const nn::EncoderOnly*>(&model)) {
    mlm_ = true;
    mask_rule_ = data::mask_rule(tokenizer, model.config().src_vocab);
    ATTEND_CHECK(mask_rule_.mask_id >= 0,
                 "model.arch encoder_only: the vocabulary has no {} piece (train one with "
                 "attend train, which adds it, or give a SentencePiece model that has it)",
                 data::kMaskPiece);
  }
  model_.set_training(true);
}

ag::Variable Trainer::logits(const data::Batch& b, uint64_t dropout_stream) const {
  if (const auto* ed = dynamic_cast<const nn::EncoderDecoder*>(&model_))
    return ed->forward(b.src, b.src_lengths, b.tgt_in, b.tgt_lengths, dropout_stream);
  if (const auto* lm = dynamic_cast<const nn::DecoderOnly*>(&model_))
    return lm->forward(b.tgt_in, b.tgt_lengths, dropout_stream);
  if (const auto* mlm = dynamic_cast<const nn::EncoderOnly*>(&model_))
    return mlm->forward(b.tgt_in, b.tgt_lengths, dropout_stream);
  ATTEND_FAIL("train: model.arch {} cannot be trained", nn::arch_name(model_.config().arch));
}

Trainer::~Trainer() {
  if (reducer_) gradients_.on_ready(nullptr);
}

void Trainer::broadcast_parameters() {
  for (auto& [name, v] : model_.named_parameters())
    dist::broadcast_tensor(*comm_, v.mutable_value(), 0);
}

void Trainer::resume(const std::string& dir) {
  state_ = load_state(dir);
  load_training_weights(dir, model_);
  if (comm_) broadcast_parameters();  // every rank read the same files; rank 0's copy rules
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
  const size_t first = comm_ ? static_cast<size_t>(comm_->rank()) * batches.size() : 0;
  for (size_t a = 0; a < batches.size(); ++a) {
    data::Batch masked;  // masked-LM: this micro-batch's corruption, a function of (step, a)
    if (mlm_)
      masked = data::mask_batch(*batches[a], mask_rule_, options_.seed ^ kMaskSeed,
                                mix_stream(static_cast<uint64_t>(state_.step), first + a));
    const data::Batch& b = mlm_ ? masked : *batches[a];
    const bool last = a + 1 == batches.size();
    {
      ArenaScope scope(&arena_);
      ProductsScope products(options_.precision);  // train.precision: forward and backward
      ag::Tape tape;
      ag::Variable loss;
      const uint64_t dropout_stream =
          mix_stream(mix_stream(options_.seed, static_cast<uint64_t>(state_.step)),
                     static_cast<uint64_t>(first + a));
      {
        ag::TapeScope rec(&tape);
        loss = ag::cross_entropy(logits(b, dropout_stream), b.tgt_out, ce, ops::Reduction::kSum);
      }
      loss_sum += loss.value().item();
      if (reducer_ && last) reducer_->arm();  // buckets start as backward finishes them
      tape.backward(loss);
      if (reducer_ && last) reducer_->finish();
    }
    arena_.reset();
    own_tokens += b.tgt_tokens;
  }
  if (comm_) {  // the loss and token counts of the whole step, over every rank
    double sums[2] = {loss_sum, static_cast<double>(own_tokens)};
    comm_->all_reduce_sum(sums, 2);
    loss_sum = sums[0];
    own_tokens = static_cast<int64_t>(sums[1]);
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
    int64_t k = 0, correct = 0;
    for (const auto& rows : data::sorted_plan(set.examples, options_.max_tokens)) {
      ArenaScope scope(&arena);
      data::Batch b = data::make_batch(set.examples, rows);
      // masked-LM: the same corruption at every validation (batch k's own stream)
      if (mlm_) b = data::mask_batch(b, mask_rule_, options_.seed ^ kMaskSeed ^ 1, k++);
      const Tensor out_logits = logits(b, 0).value();
      const auto out =
          ops::cross_entropy(out_logits, b.tgt_out, {0.0, data::kPadId}, ops::Reduction::kSum);
      nll += out.loss.item();
      tokens += b.tgt_tokens;
      if (mlm_) correct += decode::count_correct(out_logits, b.tgt_out, data::kPadId);
      arena.reset();
    }
    if (mlm_)
      v.accuracy = static_cast<double>(correct) / static_cast<double>(std::max<int64_t>(tokens, 1));
  }
  v.loss = nll / static_cast<double>(std::max<int64_t>(tokens, 1));
  v.ppl = std::exp(v.loss);
  const auto* translation = dynamic_cast<const nn::EncoderDecoder*>(&model_);
  if (options_.valid_bleu && translation && !set.sources.empty()) {
    decode::TranslateOptions o;
    o.search.beam = options_.valid_beam;
    o.search.alpha = options_.valid_alpha;
    o.batch_tokens = options_.valid_max_tokens;
    o.max_input_tokens = std::numeric_limits<int64_t>::max();  // validation cuts nothing
    const auto outs =
        decode::Translator(*translation, tokenizer_).translate(set.sources, o, "validation");
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

// Every rank must train the same thing: rank 0's configuration (all keys, after overrides) is
// compared with each rank's; a difference stops every rank, naming the first differing key.
std::string json_text(const nlohmann::json& v) {
  return v.is_string() ? v.get<std::string>() : v.dump();
}

void check_same_config(dist::Communicator& comm, const std::string& mine) {
  const std::string theirs = dist::broadcast_string(comm, mine, 0);
  std::string diff;
  if (theirs != mine) {
    const auto a = nlohmann::json::parse(theirs), b = nlohmann::json::parse(mine);
    for (auto it = a.begin(); it != a.end() && diff.empty(); ++it)
      if (!b.contains(it.key()) || b[it.key()] != it.value())
        diff = format("{} is {} on rank 0 but {} on rank {}", it.key(), json_text(it.value()),
                      b.contains(it.key()) ? json_text(b[it.key()]) : "unset", comm.rank());
    for (auto it = b.begin(); it != b.end() && diff.empty(); ++it)
      if (!a.contains(it.key()))
        diff = format("{} is unset on rank 0 but {} on rank {}", it.key(), json_text(it.value()),
                      comm.rank());
  }
  int64_t bad = diff.empty() ? 0 : comm.rank() + 1;  // the highest differing rank + 1
  comm.all_reduce_max(&bad, 1);
  ATTEND_CHECK(
      bad == 0, "mpirun: the ranks run different configurations: {}",
      diff.empty() ? format("rank {} differs from rank 0 (see its message)", bad - 1) : diff);
}

}  // namespace

TrainResult train(const io::Config& c, bool resume) {
  const SignalWatcher signals;  // first: every thread started below inherits its mask
  TrainOptions o = TrainOptions::from_config(c);
  if (o.threads > 0) set_num_threads(o.threads);
  // Data parallel under mpirun: rank 0 prints, logs and writes every file; every rank trains.
  dist::Communicator& comm = dist::world();
  const int rank = comm.rank(), ranks = comm.size();
  const bool lead = rank == 0;
  if (!lead) std::freopen("/dev/null", "w", stdout);  // errors still reach stderr
  if (ranks > 1) check_same_config(comm, c.to_json());
  const std::string& out = o.out;
  std::error_code ec;
  if (lead) fs::create_directories(fs::path(out) / "checkpoints", ec);
  ATTEND_CHECK(!ec, "train.out: cannot create {}: {}", out, ec.message());
  comm.barrier();
  if (lead && !resume && !models::last_checkpoint(out).empty()) {
    ATTEND_CHECK(o.overwrite,
                 "train.out: {} already holds a run (continue it with --resume, or start afresh "
                 "with --train.overwrite true, which deletes its checkpoints)",
                 out);
    fs::remove_all(fs::path(out) / "checkpoints", ec);
    fs::remove_all(fs::path(out) / "best", ec);
    fs::create_directories(fs::path(out) / "checkpoints", ec);
  }
  if (lead) {  // what a killed run left half-written or half-deleted ("*.tmp") goes now
    for (const fs::path& d : {fs::path(out), fs::path(out) / "checkpoints"})
      for (const auto& e : fs::directory_iterator(d, ec))
        if (e.path().extension() == ".tmp") fs::remove_all(e.path(), ec);
  }
  comm.barrier();  // rank 0 has cleared an overwritten run
  const std::string ckpt = resume ? models::last_checkpoint(out) : "";
  ATTEND_CHECK(!resume || !ckpt.empty(), "--resume: {} holds no checkpoint to resume from", out);
  if (resume) {
    models::verify_model_dir(ckpt, true);
    // A step's global batch (ranks x train.accumulate) is kept across a change of rank count.
    const int64_t global = load_state(ckpt).global_batches;
    if (global > 0 && global != ranks * o.accumulate) {
      // Adjusted unless train.accumulate was changed from the checkpoint's own value.
      io::Config saved = train_config();
      saved.load_json(read_config_json(ckpt), ckpt + "/config.json");
      const bool changed = std::max<int64_t>(1, saved.get_int("train.accumulate")) != o.accumulate;
      ATTEND_CHECK(
          !changed && global % ranks == 0,
          "--resume: the checkpoint's steps take {} batches (ranks x train.accumulate), "
          "but {} rank(s) x train.accumulate {} take {}{}",
          global, ranks, o.accumulate, ranks * o.accumulate,
          global % ranks == 0
              ? format("; set --train.accumulate {} to continue the same run", global / ranks)
              : format("; {} batches cannot be split over {} ranks", global, ranks));
      o.accumulate = global / ranks;
      std::printf("resume: train.accumulate %lld keeps the checkpoint's %lld batches per step\n",
                  static_cast<long long>(o.accumulate), static_cast<long long>(global));
    }
  }

  // Model keys are checked before any data is read (vocabulary size not known yet).
  const nn::TransformerConfig checked = models::model_config(c, 8);
  checked.validate();
  const bool mlm = checked.arch == nn::Arch::kEncoderOnly;
  const bool lm = checked.arch == nn::Arch::kDecoderOnly || mlm;  // trains on text
  ATTEND_CHECK(!mlm || c.get_string("vocab.type") != "char",
               "vocab.type char: masked-LM training (model.arch encoder_only) needs a subword "
               "vocabulary (bpe or unigram), which holds the {} piece",
               data::kMaskPiece);
  if (lm) o.valid_bleu = false;  // a language model is validated (and selected) by its loss
  // Data and vocabulary.
  Corpus corpus;
  LmText text;
  if (lm) {
    text = load_lm_text(c, checked.arch);
  } else {
    corpus = load_corpus(c);
  }
  data::Tokenizer tok;
  if (resume) {
    tok = models::read_tokenizer(ckpt);
  } else if (c.is_set("vocab.model")) {
    tok = data::Tokenizer::load(c.get_string("vocab.model"));
  } else if (!lead) {  // rank 0 trains the vocabulary; the others receive it
    tok = data::Tokenizer::from_bytes(dist::broadcast_string(comm, "", 0), "rank 0's vocabulary");
  } else {
    const auto t0 = Clock::now();
    std::vector<std::string> all;  // the sentences (lines) the vocabulary is trained on
    if (lm) {
      if (c.get_string("vocab.type") != "char") all = data::split_lines(text.train);
    } else {
      all = corpus.train_src;
      all.insert(all.end(), corpus.train_tgt.begin(), corpus.train_tgt.end());
    }
    if (c.get_string("vocab.type") == "char") {
      std::string joined = text.train;
      for (const auto& line : all) joined += line + "\n";
      tok = data::Tokenizer::train_chars(joined);
      std::printf("vocab: %lld characters (and 4 special ids) in %.1fs\n",
                  static_cast<long long>(tok.vocab_size() - 4), seconds_since(t0));
    } else {
      data::TokenizerOptions to;
      to.vocab_size = c.get_int("vocab.size");
      to.model_type = c.get_string("vocab.type");
      to.split_digits = c.get_bool("vocab.split_digits");
      to.max_sentences = c.get_int("vocab.max_sentences");
      to.seed = o.seed;
      to.mask_token = mlm;
      ATTEND_CHECK(!all.empty(), "vocab: no training text to learn a vocabulary from");
      tok = data::Tokenizer::train(all, to);
      std::printf("vocab: trained a %s model of %lld pieces on %zu sentences in %.1fs\n",
                  to.model_type.c_str(), static_cast<long long>(tok.vocab_size()), all.size(),
                  seconds_since(t0));
    }
    if (ranks > 1) dist::broadcast_string(comm, tok.bytes(), 0);
  }
  if (lead) tok.save((fs::path(out) / "tokenizer.model").string());
  if (lead &&
      c.get_string("data.generate") != "none") {  // the held-out set, for inspection and scoring
    std::string src, ref;
    for (size_t i = 0; i < corpus.valid_src.size(); ++i) {
      src += corpus.valid_src[i] + "\n";
      ref += corpus.valid_tgt[i] + "\n";
    }
    io::write_file_atomic((fs::path(out) / "valid.src").string(), src);
    io::write_file_atomic((fs::path(out) / "valid.ref").string(), ref);
  }
  const nn::TransformerConfig model_cfg = models::model_config(c, 0, &tok);
  std::vector<data::Example> train_set;
  ValidationSet valid;
  if (mlm) {  // one sentence per line: BOS ids EOS, cut to the model's positions
    train_set = data::mlm_sentences(tok, text.train, model_cfg.max_positions);
    valid.examples = data::mlm_sentences(tok, text.valid, model_cfg.max_positions);
    std::printf(
        "data: %zu training sentences, %zu validation sentences (masked-LM: 15%% of the "
        "tokens chosen, 80%% of those masked, 10%% random, 10%% kept)\n",
        train_set.size(), valid.examples.size());
    ATTEND_CHECK(!train_set.empty(), "data.train_text: no sentences");
  } else if (lm) {
    const int64_t block = c.get_int("data.block");
    const int64_t stride =
        c.get_int("data.block_stride") > 0 ? c.get_int("data.block_stride") : block;
    ATTEND_CHECK(block >= 1 && block <= model_cfg.max_positions,
                 "data.block: expected 1..model.max_positions ({}), got {}",
                 model_cfg.max_positions, block);
    ATTEND_CHECK(c.get_int("data.block_stride") >= 0, "data.block_stride: expected >= 0, got {}",
                 c.get_int("data.block_stride"));
    const std::vector<int32_t> train_ids = data::lm_stream(tok, text.train);
    const std::vector<int32_t> valid_ids = data::lm_stream(tok, text.valid);
    train_set = data::lm_windows(train_ids, block, stride);
    valid.examples = data::lm_windows(valid_ids, block, block);
    std::printf(
        "data: %zu training tokens in %zu windows of %lld (stride %lld), %zu validation "
        "tokens in %zu windows\n",
        train_ids.size(), train_set.size(), static_cast<long long>(block),
        static_cast<long long>(stride), valid_ids.size(), valid.examples.size());
    ATTEND_CHECK(!train_set.empty(), "data.train_text: too little text for one training window");
  } else {
    int64_t too_long = 0;
    const int64_t max_len = c.get_int("data.max_length");
    train_set =
        encode_pairs(tok, model_cfg, corpus.train_src, corpus.train_tgt, max_len, &too_long);
    valid = {encode_pairs(tok, model_cfg, corpus.valid_src, corpus.valid_tgt, 0, nullptr),
             corpus.valid_src, corpus.valid_tgt};
    std::printf(
        "data: %zu training pairs (%lld longer than %lld subwords skipped), %zu validation pairs\n",
        train_set.size(), static_cast<long long>(too_long), static_cast<long long>(max_len),
        valid.examples.size());
    ATTEND_CHECK(!train_set.empty(), "data: no training pairs left after filtering");
  }

  // Model and trainer.
  std::unique_ptr<nn::Model> model;
  if (mlm) {
    model = std::make_unique<nn::EncoderOnly>(model_cfg, o.seed);
  } else if (lm) {
    model = std::make_unique<nn::DecoderOnly>(model_cfg, o.seed);
  } else {
    model = std::make_unique<nn::EncoderDecoder>(model_cfg, o.seed);
  }
  Trainer trainer(*model, tok, o, &comm);
  TrainerState& state = trainer.state();
  if (resume) trainer.resume(ckpt);
  if (o.ema_decay > 0) {
    std::printf("ema: validation and checkpoints use a moving average of the weights, decay %g%s\n",
                o.ema_decay, resume && !state.ema ? " (starting from the resumed weights)" : "");
  } else if (resume && state.ema) {
    std::printf("ema: train.ema_decay is 0, so the checkpoint's moving average is dropped\n");
  }
  const auto& mc = model->config();
  if (mlm)
    std::printf("model: encoder-only, %lld layers", static_cast<long long>(mc.encoder_layers));
  else if (lm)
    std::printf("model: decoder-only, %lld layers", static_cast<long long>(mc.decoder_layers));
  else
    std::printf("model: %lld+%lld layers", static_cast<long long>(mc.encoder_layers),
                static_cast<long long>(mc.decoder_layers));
  std::printf(", d_model %lld, FFN %lld, %lld heads, vocab %lld, %lld parameters; %d threads\n",
              static_cast<long long>(mc.d_model), static_cast<long long>(mc.ffn),
              static_cast<long long>(mc.heads), static_cast<long long>(mc.src_vocab),
              static_cast<long long>(model->num_parameters()), num_threads());
  if (o.precision == DType::kBF16)
    std::printf(
        "precision: bf16 products, f32 sums (oneDNN %s); weights, gradients, Adam and "
        "checkpoints fp32\n",
        ops::bf16_products_kernel().c_str());
  if (ranks > 1)
    std::printf(
        "data parallel: %d ranks (%s), %lld batch(es) per rank per step, gradients "
        "summed in %lld bucket(s) of <= %g MB\n",
        ranks, comm.library().c_str(), static_cast<long long>(o.accumulate),
        static_cast<long long>(trainer.reducer()->num_buckets()), o.bucket_mb);
  if (resume)
    std::printf("resume: %s (step %lld, epoch %lld, batch %lld)\n", ckpt.c_str(),
                static_cast<long long>(state.step), static_cast<long long>(state.epoch),
                static_cast<long long>(state.batch_index));

  const std::string config_json = c.to_json();
  const std::string log_file = (fs::path(out) / "train.jsonl").string();
  if (lead) {
    io::write_file_atomic((fs::path(out) / "config.json").string(), config_json);
    if (resume)
      truncate_log(log_file, state.step);
    else
      io::write_file_atomic(log_file, "");
  }
  std::ofstream log;
  if (lead) log.open(log_file, std::ios::app);
  auto record = [&](const nlohmann::ordered_json& j) {
    if (!lead) return;
    log << j.dump() << "\n";
    log.flush();
  };

  std::vector<std::string> saved = models::list_checkpoints(out);  // oldest first
  auto save = [&] {
    if (!lead) return;
    char name[32];
    std::snprintf(name, sizeof(name), "step-%08lld", static_cast<long long>(state.step));
    trainer.save((fs::path(out) / "checkpoints" / name).string(), config_json, true);
    io::write_file_atomic((fs::path(out) / "checkpoints" / "last").string(),
                          std::string(name) + "\n");
    if (std::find(saved.begin(), saved.end(), name) == saved.end()) saved.push_back(name);
    while (static_cast<int64_t>(saved.size()) > o.keep_checkpoints) {
      io::remove_dir_atomic((fs::path(out) / "checkpoints" / saved.front()).string());
      saved.erase(saved.begin());
    }
  };

  state.global_batches = ranks * o.accumulate;
  // A global step takes ranks x accumulate batches of the plan; this rank builds its own run.
  data::BatchStream stream(train_set, o.max_tokens, o.seed, state.epoch, state.batch_index, 8,
                           {rank, ranks, o.accumulate});
  // mpirun hands rank 0 a pseudo-terminal even when its output goes to a file: plain lines then.
  const bool tty = isatty(fileno(stdout)) && !dist::launched_by_mpi();
  const auto start = Clock::now();
  const double elapsed_before = state.elapsed_seconds;
  const int64_t first_step = state.step;
  int64_t window_tokens = 0, window_src_tokens = 0, window_steps = 0;
  double window_loss = 0;
  auto window_start = Clock::now();
  TrainResult result;
  bool stop = false, saved_now = false;
  std::vector<data::BatchStream::Item> items(static_cast<size_t>(o.accumulate * ranks));
  std::vector<const data::Batch*> batches;

  while (!stop && state.step < o.max_steps) {
    batches.clear();
    for (auto& item : items) {
      item = stream.next();
      if (item.owned) batches.push_back(&item.batch);
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
    if (ranks > 1) {  // every rank stops together: a signal or a time limit on any one counts
      int64_t flags[2] = {g_signal.load(), stop ? 1 : 0};
      comm.all_reduce_max(flags, 2);
      if (flags[0] != 0 && g_signal.load() == 0) g_signal.store(static_cast<int>(flags[0]));
      stop = flags[1] != 0;
    }
    if (g_signal.load() != 0) {
      stop = true;
      result.interrupted = true;
    }

    const bool log_now = state.step % o.log_every == 0 || stop || state.step == o.max_steps;
    if (log_now && ranks > 1) comm.all_reduce_sum(&window_src_tokens, 1);  // every rank's share
    if (log_now || tty) {
      const double wsec = std::max(1e-9, seconds_since(window_start));
      const double tps = static_cast<double>(window_tokens) / wsec;
      const double per_step = seconds_since(start) / static_cast<double>(state.step - first_step);
      double eta = per_step * static_cast<double>(o.max_steps - state.step);
      if (o.max_minutes > 0)  // the time limit comes first
        eta = std::max(0.0, std::min(eta, o.max_minutes * 60.0 - state.elapsed_seconds));
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
    const bool validate_now =
        !valid.examples.empty() && o.valid_every > 0 && (state.step % o.valid_every == 0 || last);
    if (validate_now && !lead) {  // rank 0 validates; its early-stopping decision reaches all
      ++state.validations;
      int64_t stop_now = 0;
      comm.broadcast(&stop_now, sizeof(stop_now), 0);
      if (stop_now) stop = true;
    }
    if (validate_now && lead) {
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
      if (v.accuracy >= 0) std::printf("  masked accuracy %.1f%%", 100.0 * v.accuracy);
      std::printf("  (%.1fs)%s\n", v.seconds, better ? "  new best" : "");
      nlohmann::ordered_json j = {
          {"step", state.step}, {"valid_loss", v.loss}, {"valid_ppl", v.ppl}};
      if (v.bleu >= 0) {
        j["valid_bleu"] = v.bleu;
        j["valid_exact"] = v.exact;
      }
      if (v.accuracy >= 0) j["valid_masked_accuracy"] = v.accuracy;
      j["best"] = better;
      record(j);
      if (o.patience > 0 && state.bad_validations >= o.patience) {
        std::printf("early stopping: %lld validations without improvement\n",
                    static_cast<long long>(state.bad_validations));
        stop = true;
      }
      if (ranks > 1) {
        int64_t stop_now = stop ? 1 : 0;
        comm.broadcast(&stop_now, sizeof(stop_now), 0);
      }
    }
    if ((o.save_every > 0 && state.step % o.save_every == 0) || stop || state.step == o.max_steps) {
      save();
      saved_now = true;
    }
  }
  if (!saved_now && state.step > first_step) save();
  if (result.interrupted)
    std::printf("interrupted by signal %d: checkpoint saved at step %lld; continue with --resume\n",
                g_signal.load(), static_cast<long long>(state.step));
  result.steps = state.step;
  result.has_best = state.has_best;
  result.best_metric = state.best_metric;
  result.best_metric_name = o.select_by_bleu() ? "bleu" : "loss";
  return result;
}

}  // namespace attend::train
