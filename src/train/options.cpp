// Training configuration keys (see options.h). Keep configs/README.md in step with this list.
#include "train/options.h"

#include <algorithm>

#include "core/device.h"
#include "core/error.h"
#include "models/config.h"

namespace attend::train {

io::Config train_config() {
  using io::KeyType;
  std::vector<io::KeySpec> keys = models::model_keys();
  const std::vector<io::KeySpec> train_keys = {
      // data
      {"data.train_src", KeyType::kString, "",
       "training source file (UTF-8, one sentence per line, .gz allowed)"},
      {"data.train_tgt", KeyType::kString, "",
       "training target file, line-aligned with data.train_src"},
      {"data.valid_src", KeyType::kString, "", "validation source file (optional)"},
      {"data.valid_tgt", KeyType::kString, "", "validation target file"},
      {"data.train_text", KeyType::kString, "",
       "language models (model.arch decoder_only): the training text, UTF-8, .gz allowed; "
       "a character vocabulary reads it as one stream of characters (newlines included), a "
       "subword vocabulary as one document per line"},
      {"data.valid_text", KeyType::kString, "",
       "language models: validation text (default: the last data.valid_fraction of "
       "data.train_text)"},
      {"data.valid_fraction", KeyType::kFloat, "0.1",
       "language models without data.valid_text: this share of data.train_text's characters, "
       "from its end, is held out for validation (nanoGPT's split: 0.1)"},
      {"data.block", KeyType::kInt, "256",
       "language models: tokens per training window (the context trained; <= model.max_positions)"},
      {"data.block_stride", KeyType::kInt, "0",
       "language models: tokens between the starts of consecutive training windows (0: "
       "data.block, no overlap)"},
      {"data.generate", KeyType::kString, "none",
       "built-in corpus instead of files: none, numbers-en or numbers-de (digits -> words)"},
      {"data.generate_train", KeyType::kInt, "20000", "generated corpus: training pairs"},
      {"data.generate_valid", KeyType::kInt, "500",
       "generated corpus: validation pairs (disjoint seed)"},
      {"data.generate_max", KeyType::kInt, "999999", "generated corpus: largest number"},
      {"data.bad_utf8", KeyType::kString, "error",
       "invalid UTF-8 in a corpus: error (names file:line) or skip (counted)"},
      {"data.max_length", KeyType::kInt, "128",
       "pairs with more subwords on either side are skipped (counted)"},
      {"data.valid_max_sentences", KeyType::kInt, "0",
       "validate on at most this many sentences (0: all)"},
      // vocabulary
      {"vocab.model", KeyType::kString, "",
       "existing SentencePiece .model to use (else one is trained)"},
      {"vocab.size", KeyType::kInt, "8000", "subword vocabulary size when training one"},
      {"vocab.type", KeyType::kString, "bpe",
       "bpe or unigram (SentencePiece subwords), or char (one id per character; language "
       "models)"},
      {"vocab.split_digits", KeyType::kBool, "false", "one subword per digit"},
      {"vocab.max_sentences", KeyType::kInt, "1000000",
       "sentences sampled to train the vocabulary"},
      // training
      {"train.out", KeyType::kString, "runs/default",
       "run directory: checkpoints, best model, train.jsonl"},
      {"train.init_from", KeyType::kString, "",
       "a model directory to start from (a converted HuggingFace model, a trained run): its "
       "architecture (model.*), weights and vocabulary; a fresh optimizer and schedule"},
      {"train.overwrite", KeyType::kBool, "false",
       "start afresh in a train.out that already holds a run (its checkpoints are deleted)"},
      {"train.seed", KeyType::kInt, "1", "seed for initialisation, data order and dropout"},
      {"train.threads", KeyType::kInt, "0", "worker threads (0: all cores)"},
      {"train.max_tokens", KeyType::kInt, "4096", "tokens per batch per side (padded)"},
      {"train.accumulate", KeyType::kInt, "1",
       "batches per optimizer step and rank (gradient accumulation)"},
      {"train.bucket_mb", KeyType::kFloat, "25",
       "data-parallel runs (mpirun): gradients are summed over ranks in buckets of this many MB, "
       "each started as soon as backward has finished it"},
      {"train.max_steps", KeyType::kInt, "100000", "stop after this many optimizer steps"},
      {"train.max_epochs", KeyType::kInt, "0", "stop after this many epochs (0: no limit)"},
      {"train.max_minutes", KeyType::kFloat, "0",
       "stop (and save) after this much wall time (0: no limit)"},
      {"train.schedule", KeyType::kString, "noam",
       "noam (paper), inverse_sqrt, constant, or cosine (to lr/10 at train.max_steps)"},
      {"train.lr", KeyType::kFloat, "1.0",
       "noam: scale factor; inverse_sqrt/constant/cosine: peak learning rate"},
      {"train.warmup", KeyType::kInt, "4000", "warm-up steps"},
      {"train.adam_beta1", KeyType::kFloat, "0.9", "Adam beta1"},
      {"train.adam_beta2", KeyType::kFloat, "0.98", "Adam beta2 (paper: 0.98)"},
      {"train.adam_eps", KeyType::kFloat, "1e-9", "Adam epsilon (paper: 1e-9)"},
      {"train.weight_decay", KeyType::kFloat, "0", "decoupled weight decay (AdamW)"},
      {"train.label_smoothing", KeyType::kFloat, "0.1", "label smoothing epsilon (paper: 0.1)"},
      {"train.ema_decay", KeyType::kFloat, "0",
       "moving average of the weights, for validation and checkpoints: decay per step (0: off; "
       "0.999 ~ the last 1,000 steps)"},
      {"train.precision", KeyType::kString, "fp32",
       "fp32, or bf16: the matrix products of forward and backward with bf16 operands and f32 "
       "sums (AMX or AVX-512 BF16); weights, gradients, Adam and checkpoints stay fp32"},
      {"train.device", KeyType::kString, "cpu",
       "where the model trains: cpu, or cuda / cuda:N (a CUDA build and an NVIDIA GPU; one rank; "
       "never run on a GPU yet)"},
      {"train.clip_norm", KeyType::kFloat, "0", "clip the global gradient norm to this (0: off)"},
      {"train.log_every", KeyType::kInt, "50",
       "steps between progress lines and train.jsonl records"},
      {"train.save_every", KeyType::kInt, "1000", "steps between checkpoints"},
      {"train.keep_checkpoints", KeyType::kInt, "20",
       "newest checkpoints kept (older ones deleted)"},
      {"train.valid_every", KeyType::kInt, "1000", "steps between validations (0: never)"},
      {"train.valid_bleu", KeyType::kBool, "true", "decode the validation set and report BLEU"},
      {"train.valid_beam", KeyType::kInt, "4",
       "beam size when decoding the validation set (1: greedy)"},
      {"train.valid_alpha", KeyType::kFloat, "0.6",
       "length penalty exponent of the validation beam search"},
      {"train.valid_metric", KeyType::kString, "bleu", "what selects the best model: bleu or loss"},
      {"train.patience", KeyType::kInt, "0",
       "stop after this many validations without improvement (0: never)"},
      {"train.valid_max_tokens", KeyType::kInt, "2000",
       "source tokens per decoding batch in validation"},
  };
  keys.insert(keys.end(), train_keys.begin(), train_keys.end());
  return io::Config(std::move(keys));
}

TrainOptions TrainOptions::from_config(const io::Config& c) {
  TrainOptions o;
  o.out = c.get_string("train.out");
  o.overwrite = c.get_bool("train.overwrite");
  o.seed = static_cast<uint64_t>(c.get_int("train.seed"));
  const int64_t threads = c.get_int("train.threads");
  ATTEND_CHECK(threads >= 0 && threads <= 1024, "train.threads: expected 0..1024, got {}", threads);
  o.threads = static_cast<int>(threads);
  o.max_tokens = c.get_int("train.max_tokens");
  ATTEND_CHECK(o.max_tokens >= 1, "train.max_tokens: expected >= 1, got {}", o.max_tokens);
  o.accumulate = std::max<int64_t>(1, c.get_int("train.accumulate"));
  o.bucket_mb = c.get_float("train.bucket_mb");
  ATTEND_CHECK(o.bucket_mb > 0 && o.bucket_mb <= 1e6,
               "train.bucket_mb: expected a size in MB > 0, got {}", o.bucket_mb);
  o.max_steps = c.get_int("train.max_steps");
  o.max_epochs = c.get_int("train.max_epochs");
  o.max_minutes = c.get_float("train.max_minutes");
  o.schedule = parse_schedule(c.get_string("train.schedule"));
  o.lr = c.get_float("train.lr");
  o.warmup = c.get_int("train.warmup");
  o.adam_beta1 = c.get_float("train.adam_beta1");
  o.adam_beta2 = c.get_float("train.adam_beta2");
  o.adam_eps = c.get_float("train.adam_eps");
  o.weight_decay = c.get_float("train.weight_decay");
  o.label_smoothing = c.get_float("train.label_smoothing");
  o.clip_norm = c.get_float("train.clip_norm");
  const std::string precision = c.get_string("train.precision");
  ATTEND_CHECK(precision == "fp32" || precision == "bf16",
               "train.precision: expected fp32 or bf16, got '{}'", precision);
  o.precision = precision == "bf16" ? DType::kBF16 : DType::kF32;
  o.device = parse_device(c.get_string("train.device"), "train.device");
  o.ema_decay = c.get_float("train.ema_decay");
  ATTEND_CHECK(o.ema_decay >= 0 && o.ema_decay < 1,
               "train.ema_decay: expected a value in [0, 1), got {}", o.ema_decay);
  o.log_every = std::max<int64_t>(1, c.get_int("train.log_every"));
  o.save_every = c.get_int("train.save_every");
  o.keep_checkpoints = std::max<int64_t>(1, c.get_int("train.keep_checkpoints"));
  o.valid_every = c.get_int("train.valid_every");
  o.valid_bleu = c.get_bool("train.valid_bleu");
  o.valid_beam = c.get_int("train.valid_beam");
  ATTEND_CHECK(o.valid_beam >= 1, "train.valid_beam: expected >= 1, got {}", o.valid_beam);
  o.valid_alpha = c.get_float("train.valid_alpha");
  ATTEND_CHECK(o.valid_alpha >= 0, "train.valid_alpha: expected >= 0, got {}", o.valid_alpha);
  const std::string metric = c.get_string("train.valid_metric");
  ATTEND_CHECK(metric == "bleu" || metric == "loss",
               "train.valid_metric: expected bleu or loss, got '{}'", metric);
  o.valid_metric = metric == "bleu" ? ValidMetric::kBleu : ValidMetric::kLoss;
  o.patience = c.get_int("train.patience");
  o.valid_max_tokens = c.get_int("train.valid_max_tokens");
  ATTEND_CHECK(o.valid_max_tokens >= 1, "train.valid_max_tokens: expected >= 1, got {}",
               o.valid_max_tokens);
  return o;
}

}  // namespace attend::train
