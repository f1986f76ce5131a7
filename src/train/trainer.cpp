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
    struct sigaction ours = {};
    ours.sa_handler = on_signal;
    sigemptyset(&ours.sa_mask);
    sigaction(SIGINT, &ours, &previous_int_);
    sigaction(SIGTERM, &ours, &previous_term_);
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
    // The handlers before training come back (a Python interpreter's, which turns Ctrl-C into
    // KeyboardInterrupt; the default's in `attend train`).
    sigaction(SIGINT, &previous_int_, nullptr);
    sigaction(SIGTERM, &previous_term_, nullptr);
    pthread_sigmask(SIG_SETMASK, &previous_, nullptr);
  }
  SignalWatcher(const SignalWatcher&) = delete;
  SignalWatcher& operator=(const SignalWatcher&) = delete;

 private:
  sigset_t set_, previous_;
  struct sigaction previous_int_ = {}, previous_term_ = {};
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
  ATTEND_CHECK(model.device().is_cpu() || !comm || comm->size() == 1,
               "train.device {}: data-parallel training on GPUs (NCCL) is not wired into the "
               "trainer yet; run one rank",
               model.device().str());
  if (o.precision == DType::kBF16 && model.device().is_cpu()) {  // a GPU has bf16 products
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
  task_ = Task::make(model.config().arch);
  task_->bind(model, tokenizer);
  model_.set_training(true);
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
  const ops::CrossEntropyConfig ce{options_.label_smoothing, data::kIgnore};
  gradients_.zero();
  double loss_sum = 0;
  int64_t own_tokens = 0;
  const size_t first = comm_ ? static_cast<size_t>(comm_->rank()) * batches.size() : 0;
  for (size_t a = 0; a < batches.size(); ++a) {
    data::Batch scratch;  // masked-LM: this micro-batch's corruption, a function of (step, a)
    const data::Batch b =
        task_
            ->prepare(*batches[a], options_.seed,
                      mix_stream(static_cast<uint64_t>(state_.step), first + a), scratch)
            .to(model_.device());
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
        loss = ag::cross_entropy(task_->logits(b, dropout_stream), b.tgt_out, ce,
                                 ops::Reduction::kSum);
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
    bool counted = false;  // the task measures exact predictions (masked accuracy)
    for (const auto& rows : data::sorted_plan(set.examples, options_.max_tokens)) {
      ArenaScope scope(&arena);
      // Batch k as the task measures it (masked-LM: the same corruption every validation).
      const data::Batch b =
          task_->validation_batch(data::make_batch(set.examples, rows, frame()), options_.seed, k++)
              .to(model_.device());
      const Tensor out_logits = task_->logits(b, 0).value();
      const auto out =
          ops::cross_entropy(out_logits, b.tgt_out, {0.0, data::kIgnore}, ops::Reduction::kSum);
      nll += out.loss.item();
      tokens += b.tgt_tokens;
      if (const int64_t c = task_->correct(out_logits, b); c >= 0) {
        correct += c;
        counted = true;
      }
      arena.reset();
    }
    if (counted)
      v.accuracy = static_cast<double>(correct) / static_cast<double>(std::max<int64_t>(tokens, 1));
  }
  v.loss = nll / static_cast<double>(std::max<int64_t>(tokens, 1));
  v.ppl = std::exp(v.loss);
  task_->validate_more(set, options_, v);
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

namespace {

// One `attend train` run, in the order it happens: set up the run directory (and what a resume
// needs), read the data and make the vocabulary, build the model and the trainer, then loop
// (steps, progress, validation, checkpoints). Rank 0 prints, logs and writes every file; every
// rank trains.
class Run {
 public:
  Run(const io::Config& c, bool resume, const RecordHook& on_record);
  void read_data();
  void build();
  TrainResult loop();

 private:
  void prepare_directory();
  void check_resume();
  data::Tokenizer make_vocabulary();
  void print_setup() const;
  void open_log();
  void record(const nlohmann::ordered_json& j);
  void save();
  /// Validates on rank 0 and keeps the best model; every rank learns whether to stop early.
  bool validate();
  void log_progress(const StepResult& r, bool log_now);

  /// train.init_from: the model's own keys (model.*) join the run's configuration, from its
  /// directory (or, on resume, from the checkpoint, which recorded them).
  void adopt_model_keys();

  io::Config c_;           // the run's keys (with train.init_from, the model's own keys too)
  std::string init_from_;  // train.init_from's model directory (empty: none)
  const bool resume_;
  const RecordHook& on_record_;
  bool hook_stop_ = false;  // on_record_ returned false
  TrainOptions o_;
  dist::Communicator& comm_;
  const int rank_, ranks_;
  const bool lead_;
  std::string ckpt_;  // the checkpoint a resume continues from
  std::unique_ptr<Task> task_;
  data::Tokenizer tok_;
  std::vector<data::Example> train_set_;
  ValidationSet valid_;
  std::unique_ptr<nn::Model> model_;
  std::unique_ptr<Trainer> trainer_;
  std::string config_json_;
  std::ofstream log_;
  std::vector<std::string> saved_;  // checkpoints kept, oldest first
  // Progress over the steps since the last logged line.
  bool tty_ = false;
  Clock::time_point start_, window_start_;
  double elapsed_before_ = 0, window_loss_ = 0;
  int64_t first_step_ = 0, window_tokens_ = 0, window_src_tokens_ = 0, window_steps_ = 0;
};

Run::Run(const io::Config& c, bool resume, const RecordHook& on_record)
    : c_(c),
      resume_(resume),
      on_record_(on_record),
      o_(TrainOptions::from_config(c)),
      comm_(dist::world()),
      rank_(comm_.rank()),
      ranks_(comm_.size()),
      lead_(rank_ == 0) {
  if (o_.threads > 0) set_num_threads(o_.threads);
  if (!lead_) std::freopen("/dev/null", "w", stdout);  // errors still reach stderr
  if (ranks_ > 1) check_same_config(comm_, c.to_json());
  prepare_directory();
  if (resume_) check_resume();
  if (c_.is_set("train.init_from")) adopt_model_keys();
  // Model keys are checked before any data is read (vocabulary size not known yet).
  const nn::TransformerConfig checked = models::model_config(c_, 8);
  checked.validate();
  task_ = Task::make(checked.arch);
  task_->check(c, o_);
}

void Run::adopt_model_keys() {
  // A resumed run reads its checkpoint alone (the model it started from may be gone).
  init_from_ = resume_ ? c_.get_string("train.init_from")
                       : models::resolve_model_dir(c_.get_string("train.init_from"));
  ATTEND_CHECK(resume_ || models::stored_precision(init_from_) == "fp32",
               "train.init_from: {} holds int8 weights (attend quantize): fine-tune the fp32 "
               "model it was made from",
               init_from_);
  for (const char* key : {"vocab.model", "vocab.size", "vocab.type", "vocab.split_digits"})
    ATTEND_CHECK(resume_ || c_.origin(key) == "default",
                 "{}: set, but with train.init_from the vocabulary is the model's own ({})", key,
                 init_from_);
  const std::string source = resume_ ? ckpt_ : init_from_;
  const io::Config model = models::model_keys_of(nlohmann::json::parse(read_config_json(source)),
                                                 source + "/config.json");
  for (const io::KeySpec& spec : models::model_keys()) {
    const std::string& key = spec.name;
    if (!model.is_set(key)) continue;
    // Dropout is training's to choose; every other key is the model's architecture.
    const auto same = [&] {
      switch (spec.type) {
        case io::KeyType::kFloat:
          return c_.get_float(key) == model.get_float(key);
        case io::KeyType::kBool:
          return c_.get_bool(key) == model.get_bool(key);
        case io::KeyType::kInt:
          return c_.get_int(key) == model.get_int(key);
        default:
          return c_.get_string(key) == model.get_string(key);
      }
    };
    ATTEND_CHECK(!c_.is_set(key) || key == "model.dropout" || same(),
                 "{}: {} differs from train.init_from's model ({} has {})", key, c_.get_string(key),
                 init_from_, model.get_string(key));
    if (!c_.is_set(key) || key != "model.dropout")
      c_.set(key, model.get_string(key), source + "/config.json");
  }
  const nn::Arch arch = models::model_config(c_, 8).arch;
  ATTEND_CHECK(arch != nn::Arch::kEncoderOnly,
               "train.init_from: fine-tuning an encoder-only (masked-LM) model is not supported "
               "yet; encoder-decoder and decoder-only models are");
}

void Run::prepare_directory() {
  const std::string& out = o_.out;
  std::error_code ec;
  if (lead_) fs::create_directories(fs::path(out) / "checkpoints", ec);
  ATTEND_CHECK(!ec, "train.out: cannot create {}: {}", out, ec.message());
  comm_.barrier();
  if (lead_ && !resume_ && !models::last_checkpoint(out).empty()) {
    ATTEND_CHECK(o_.overwrite,
                 "train.out: {} already holds a run (continue it with --resume, or start afresh "
                 "with --train.overwrite true, which deletes its checkpoints)",
                 out);
    fs::remove_all(fs::path(out) / "checkpoints", ec);
    fs::remove_all(fs::path(out) / "best", ec);
    fs::create_directories(fs::path(out) / "checkpoints", ec);
  }
  if (lead_) {  // what a killed run left half-written or half-deleted ("*.tmp") goes now
    for (const fs::path& d : {fs::path(out), fs::path(out) / "checkpoints"})
      for (const auto& e : fs::directory_iterator(d, ec))
        if (e.path().extension() == ".tmp") fs::remove_all(e.path(), ec);
  }
  comm_.barrier();  // rank 0 has cleared an overwritten run
}

void Run::check_resume() {
  ckpt_ = models::last_checkpoint(o_.out);
  ATTEND_CHECK(!ckpt_.empty(), "--resume: {} holds no checkpoint to resume from", o_.out);
  models::verify_model_dir(ckpt_, true);
  // A step's global batch (ranks x train.accumulate) is kept across a change of rank count.
  const int64_t global = load_state(ckpt_).global_batches;
  if (global > 0 && global != ranks_ * o_.accumulate) {
    // Adjusted unless train.accumulate was changed from the checkpoint's own value.
    io::Config saved = train_config();
    saved.load_json(read_config_json(ckpt_), ckpt_ + "/config.json");
    const bool changed = std::max<int64_t>(1, saved.get_int("train.accumulate")) != o_.accumulate;
    ATTEND_CHECK(
        !changed && global % ranks_ == 0,
        "--resume: the checkpoint's steps take {} batches (ranks x train.accumulate), "
        "but {} rank(s) x train.accumulate {} take {}{}",
        global, ranks_, o_.accumulate, ranks_ * o_.accumulate,
        global % ranks_ == 0
            ? format("; set --train.accumulate {} to continue the same run", global / ranks_)
            : format("; {} batches cannot be split over {} ranks", global, ranks_));
    o_.accumulate = global / ranks_;
    std::printf("resume: train.accumulate %lld keeps the checkpoint's %lld batches per step\n",
                static_cast<long long>(o_.accumulate), static_cast<long long>(global));
  }
}

data::Tokenizer Run::make_vocabulary() {
  if (resume_) return models::read_tokenizer(ckpt_);
  if (!init_from_.empty()) return models::read_tokenizer(init_from_);
  if (c_.is_set("vocab.model")) return data::Tokenizer::load(c_.get_string("vocab.model"));
  if (!lead_)  // rank 0 trains the vocabulary; the others receive it
    return data::Tokenizer::from_bytes(dist::broadcast_string(comm_, "", 0), "rank 0's vocabulary");
  const auto t0 = Clock::now();
  const std::vector<std::string> all = task_->vocabulary_sentences(c_);
  data::Tokenizer tok;
  if (c_.get_string("vocab.type") == "char") {
    std::string joined = task_->vocabulary_text();
    for (const auto& line : all) joined += line + "\n";
    tok = data::Tokenizer::train_chars(joined);
    std::printf("vocab: %lld characters (and 4 special ids) in %.1fs\n",
                static_cast<long long>(tok.vocab_size() - 4), seconds_since(t0));
  } else {
    data::TokenizerOptions to;
    to.vocab_size = c_.get_int("vocab.size");
    to.model_type = c_.get_string("vocab.type");
    to.split_digits = c_.get_bool("vocab.split_digits");
    to.max_sentences = c_.get_int("vocab.max_sentences");
    to.seed = o_.seed;
    to.mask_token = task_->needs_mask();
    ATTEND_CHECK(!all.empty(), "vocab: no training text to learn a vocabulary from");
    tok = data::Tokenizer::train(all, to);
    std::printf("vocab: trained a %s model of %lld pieces on %zu sentences in %.1fs\n",
                to.model_type.c_str(), static_cast<long long>(tok.vocab_size()), all.size(),
                seconds_since(t0));
  }
  if (ranks_ > 1) dist::broadcast_string(comm_, tok.bytes(), 0);
  return tok;
}

void Run::read_data() {
  task_->read(c_);
  tok_ = make_vocabulary();
  if (lead_) {
    tok_.save((fs::path(o_.out) / "tokenizer.model").string());
    task_->write_files(c_, o_.out);
  }
  task_->encode(c_, tok_, models::model_config(c_, 0, &tok_), train_set_, valid_);
}

void Run::build() {
  model_ = task_->make_model(models::model_config(c_, 0, &tok_), o_.seed);
  // train.init_from: the model's weights, a fresh optimizer and schedule.
  if (!init_from_.empty() && !resume_) {
    models::load_weights((fs::path(init_from_) / "model.safetensors").string(), *model_);
    std::printf("init: %s (its architecture, weights and vocabulary; a fresh optimizer)\n",
                init_from_.c_str());
  }
  model_->to(o_.device);  // before the trainer: gradients, moments and averages follow it
  trainer_ = std::make_unique<Trainer>(*model_, tok_, o_, &comm_);
  if (resume_) trainer_->resume(ckpt_);
  print_setup();
  config_json_ = c_.to_json();
  open_log();
  saved_ = models::list_checkpoints(o_.out);
}

void Run::print_setup() const {
  const TrainerState& state = trainer_->state();
  if (o_.ema_decay > 0) {
    std::printf("ema: validation and checkpoints use a moving average of the weights, decay %g%s\n",
                o_.ema_decay, resume_ && !state.ema ? " (starting from the resumed weights)" : "");
  } else if (resume_ && state.ema) {
    std::printf("ema: train.ema_decay is 0, so the checkpoint's moving average is dropped\n");
  }
  const auto& mc = model_->config();
  std::printf("model: %s", task_->describe(mc).c_str());
  std::printf(", d_model %lld, FFN %lld, %lld heads, vocab %lld, %lld parameters; %d threads\n",
              static_cast<long long>(mc.d_model), static_cast<long long>(mc.ffn),
              static_cast<long long>(mc.heads), static_cast<long long>(mc.src_vocab),
              static_cast<long long>(model_->num_parameters()), num_threads());
  if (o_.precision == DType::kBF16)
    std::printf(
        "precision: bf16 products, f32 sums (oneDNN %s); weights, gradients, Adam and "
        "checkpoints fp32\n",
        ops::bf16_products_kernel().c_str());
  if (ranks_ > 1)
    std::printf(
        "data parallel: %d ranks (%s), %lld batch(es) per rank per step, gradients "
        "summed in %lld bucket(s) of <= %g MB\n",
        ranks_, comm_.library().c_str(), static_cast<long long>(o_.accumulate),
        static_cast<long long>(trainer_->reducer()->num_buckets()), o_.bucket_mb);
  if (resume_)
    std::printf("resume: %s (step %lld, epoch %lld, batch %lld)\n", ckpt_.c_str(),
                static_cast<long long>(state.step), static_cast<long long>(state.epoch),
                static_cast<long long>(state.batch_index));
}

void Run::open_log() {
  if (!lead_) return;
  const std::string log_file = (fs::path(o_.out) / "train.jsonl").string();
  io::write_file_atomic((fs::path(o_.out) / "config.json").string(), config_json_);
  if (resume_)
    truncate_log(log_file, trainer_->state().step);
  else
    io::write_file_atomic(log_file, "");
  log_.open(log_file, std::ios::app);
}

void Run::record(const nlohmann::ordered_json& j) {
  if (!lead_) return;
  const std::string line = j.dump();
  log_ << line << "\n";
  log_.flush();
  if (on_record_ && !on_record_(line)) hook_stop_ = true;
}

void Run::save() {
  if (!lead_) return;
  const TrainerState& state = trainer_->state();
  char name[32];
  std::snprintf(name, sizeof(name), "step-%08lld", static_cast<long long>(state.step));
  trainer_->save((fs::path(o_.out) / "checkpoints" / name).string(), config_json_, true);
  io::write_file_atomic((fs::path(o_.out) / "checkpoints" / "last").string(),
                        std::string(name) + "\n");
  if (std::find(saved_.begin(), saved_.end(), name) == saved_.end()) saved_.push_back(name);
  while (static_cast<int64_t>(saved_.size()) > o_.keep_checkpoints) {
    io::remove_dir_atomic((fs::path(o_.out) / "checkpoints" / saved_.front()).string());
    saved_.erase(saved_.begin());
  }
}

void Run::log_progress(const StepResult& r, bool log_now) {
  const TrainerState& state = trainer_->state();
  if (log_now && ranks_ > 1) comm_.all_reduce_sum(&window_src_tokens_, 1);  // every rank's share
  if (!log_now && !tty_) return;
  const double wsec = std::max(1e-9, seconds_since(window_start_));
  const double tps = static_cast<double>(window_tokens_) / wsec;
  const double per_step = seconds_since(start_) / static_cast<double>(state.step - first_step_);
  double eta = per_step * static_cast<double>(o_.max_steps - state.step);
  if (o_.max_minutes > 0)  // the time limit comes first
    eta = std::max(0.0, std::min(eta, o_.max_minutes * 60.0 - state.elapsed_seconds));
  char line[256];
  std::snprintf(
      line, sizeof(line),
      "step %lld/%lld  epoch %lld  loss %.4f  lr %.3e  %.0f tgt tok/s  %s elapsed  ETA %s",
      static_cast<long long>(state.step), static_cast<long long>(o_.max_steps),
      static_cast<long long>(state.epoch + 1), window_loss_ / static_cast<double>(window_steps_),
      r.lr, tps, hms(state.elapsed_seconds).c_str(), hms(eta).c_str());
  if (log_now) {
    std::printf("%s%s\n", tty_ ? "\r\033[K" : "", line);
    record(
        {{"step", state.step},
         {"epoch", state.epoch + 1},
         {"loss", window_loss_ / static_cast<double>(window_steps_)},
         {"last_loss", r.loss},
         {"lr", r.lr},
         {"grad_norm", r.grad_norm},
         {"tgt_tokens_per_s", tps},
         {"src_tgt_tokens_per_s", static_cast<double>(window_tokens_ + window_src_tokens_) / wsec},
         {"elapsed_s", state.elapsed_seconds}});
    window_loss_ = 0;
    window_tokens_ = window_src_tokens_ = window_steps_ = 0;
    window_start_ = Clock::now();
  } else {
    std::printf("\r\033[K%s", line);
  }
  std::fflush(stdout);
}

bool Run::validate() {
  TrainerState& state = trainer_->state();
  bool stop = false;
  if (!lead_) {  // rank 0 validates; its early-stopping decision reaches all
    ++state.validations;
    int64_t stop_now = 0;
    comm_.broadcast(&stop_now, sizeof(stop_now), 0);
    return stop_now != 0;
  }
  const Validation v = trainer_->validate(valid_);
  ++state.validations;
  const bool by_bleu = o_.select_by_bleu();
  const double score = by_bleu ? v.bleu : v.loss;
  const bool better =
      !state.has_best || (by_bleu ? score > state.best_metric : score < state.best_metric);
  if (better) {
    state.best_metric = score;
    state.has_best = true;
    state.bad_validations = 0;
    trainer_->save((fs::path(o_.out) / "best").string(), config_json_, false);
  } else {
    ++state.bad_validations;
  }
  std::printf("%svalid step %lld: loss %.4f  ppl %.2f", tty_ ? "\r\033[K" : "",
              static_cast<long long>(state.step), v.loss, v.ppl);
  if (v.bleu >= 0) std::printf("  BLEU %.2f  exact %.1f%%", v.bleu, 100.0 * v.exact);
  if (v.accuracy >= 0) std::printf("  masked accuracy %.1f%%", 100.0 * v.accuracy);
  std::printf("  (%.1fs)%s\n", v.seconds, better ? "  new best" : "");
  nlohmann::ordered_json j = {{"step", state.step}, {"valid_loss", v.loss}, {"valid_ppl", v.ppl}};
  if (v.bleu >= 0) {
    j["valid_bleu"] = v.bleu;
    j["valid_exact"] = v.exact;
  }
  if (v.accuracy >= 0) j["valid_masked_accuracy"] = v.accuracy;
  j["best"] = better;
  record(j);
  if (o_.patience > 0 && state.bad_validations >= o_.patience) {
    std::printf("early stopping: %lld validations without improvement\n",
                static_cast<long long>(state.bad_validations));
    stop = true;
  }
  if (ranks_ > 1) {
    int64_t stop_now = stop ? 1 : 0;
    comm_.broadcast(&stop_now, sizeof(stop_now), 0);
  }
  return stop;
}

TrainResult Run::loop() {
  TrainerState& state = trainer_->state();
  state.global_batches = ranks_ * o_.accumulate;
  // A global step takes ranks x accumulate batches of the plan; this rank builds its own run.
  data::BatchStream stream(train_set_, o_.max_tokens, o_.seed, state.epoch, state.batch_index, 8,
                           {rank_, ranks_, o_.accumulate}, trainer_->frame());
  // mpirun hands rank 0 a pseudo-terminal even when its output goes to a file: plain lines then.
  tty_ = isatty(fileno(stdout)) && !dist::launched_by_mpi();
  start_ = window_start_ = Clock::now();
  elapsed_before_ = state.elapsed_seconds;
  first_step_ = state.step;
  TrainResult result;
  bool stop = false, saved_now = false;
  std::vector<data::BatchStream::Item> items(static_cast<size_t>(o_.accumulate * ranks_));
  std::vector<const data::Batch*> batches;

  while (!stop && state.step < o_.max_steps) {
    batches.clear();
    for (auto& item : items) {
      item = stream.next();
      if (item.owned) batches.push_back(&item.batch);
      window_src_tokens_ += item.batch.src_tokens;
      state.epoch = item.epoch;
      state.batch_index = item.index + 1;
      if (state.batch_index >= item.epoch_batches) {
        ++state.epoch;
        state.batch_index = 0;
      }
    }
    const StepResult r = trainer_->step(batches);
    result.last_loss = r.loss;
    window_loss_ += r.loss;
    window_tokens_ += r.tokens;
    ++window_steps_;
    saved_now = false;
    state.elapsed_seconds = elapsed_before_ + seconds_since(start_);

    if (o_.max_epochs > 0 && state.epoch >= o_.max_epochs) stop = true;
    if (o_.max_minutes > 0 && state.elapsed_seconds >= o_.max_minutes * 60.0) stop = true;
    if (ranks_ > 1) {  // every rank stops together: a signal or a time limit on any one counts
      int64_t flags[2] = {g_signal.load(), stop ? 1 : 0};
      comm_.all_reduce_max(flags, 2);
      if (flags[0] != 0 && g_signal.load() == 0) g_signal.store(static_cast<int>(flags[0]));
      stop = flags[1] != 0;
    }
    if (g_signal.load() != 0) {
      stop = true;
      result.interrupted = true;
    }
    log_progress(r, state.step % o_.log_every == 0 || stop || state.step == o_.max_steps);
    if (hook_stop_) stop = result.stopped = true;

    // A signal only saves: validating there would add a record the uninterrupted run lacks.
    const bool last = (stop && !result.interrupted) || state.step == o_.max_steps;
    if (!valid_.examples.empty() && o_.valid_every > 0 &&
        (state.step % o_.valid_every == 0 || last) && validate())
      stop = true;
    if (hook_stop_) stop = result.stopped = true;
    if ((o_.save_every > 0 && state.step % o_.save_every == 0) || stop ||
        state.step == o_.max_steps) {
      save();
      saved_now = true;
    }
  }
  if (!saved_now && state.step > first_step_) save();
  if (result.interrupted)
    std::printf("interrupted by signal %d: checkpoint saved at step %lld; continue with --resume\n",
                g_signal.load(), static_cast<long long>(state.step));
  result.steps = state.step;
  result.has_best = state.has_best;
  result.best_metric = state.best_metric;
  result.best_metric_name = o_.select_by_bleu() ? "bleu" : "loss";
  return result;
}

}  // namespace

io::Config run_config(const std::function<void(io::Config&)>& apply, bool resume,
                      const std::string& flag) {
  io::Config c = train_config();
  apply(c);
  if (!resume) return c;
  const std::string out = c.get_string("train.out");
  const std::string ckpt = models::last_checkpoint(out);
  ATTEND_CHECK(!ckpt.empty(), "{}: {} holds no checkpoint to resume from", flag, out);
  io::Config r = train_config();
  r.load_json(read_config_json(ckpt), ckpt + "/config.json");
  apply(r);
  return r;
}

TrainResult train(const io::Config& c, bool resume, const RecordHook& on_record) {
  const SignalWatcher signals;    // first: every thread started below inherits its mask
  Run run(c, resume, on_record);  // options, ranks, the run directory, what a resume needs
  run.read_data();                // the task's data, the vocabulary, the examples
  run.build();                    // model, trainer (resumed), the run's files
  return run.loop();              // steps, progress, validation, checkpoints
}

}  // namespace attend::train
