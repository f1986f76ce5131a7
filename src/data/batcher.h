// Token-based batching as in the paper: each batch holds about `max_tokens` source and
// `max_tokens` target tokens (counted with padding), sentences of similar length together.
// The batch order of an epoch is a pure function of (seed, epoch), so a run resumed from
// (epoch, index) sees exactly the batches the uninterrupted run would have seen. A background
// thread builds the next batches while the model trains.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/tensor.h"
#include "data/tokenizer.h"

namespace attend::data {

class Tokenizer;

/// How a batch reads an example's ids.
enum class Layout : uint8_t {
  kPair,      // translation: src -> BOS tgt (in), tgt EOS (out)
  kWindow,    // a language model's window of text (src empty): tgt holds n + 1 consecutive ids
              // of the token stream; the batch reads ids 0..n-1 and predicts ids 1..n
  kSequence,  // a masked-LM sentence (src empty): tgt (BOS ids EOS) is both input and output,
              // until mask_batch chooses what to predict
};

struct Example {
  std::vector<int32_t> src, tgt;  // subword ids, without BOS/EOS (kPair)
  Layout layout = Layout::kPair;
};

/// Masked-LM corruption (BERT's rule): every real token (id >= first_token, so no special
/// id) is chosen with probability `rate`; a chosen token becomes mask_id with probability
/// `mask`, a random token in [first_token, vocab) with probability `random`, else stays.
struct MaskRule {
  int32_t mask_id = -1;
  int32_t first_token = 5;
  int64_t vocab = 0;
  double rate = 0.15, mask = 0.8, random = 0.1;
};

/// The target of a position no loss reads (padding; a masked-LM position left as it is): never
/// a token id, so that no vocabulary's pad id (GPT-2's is its end of text, Marian's is where
/// decoding starts) is mistaken for it.
constexpr int32_t kIgnore = -1;

/// The ids a translation pair's target is framed with: BOS y_1 .. y_n in, y_1 .. y_n EOS out
/// (the model's: TransformerConfig::bos_id / eos_id).
struct Frame {
  int32_t bos = kBosId, eos = kEosId;
};

struct Batch {
  Tensor src;          // i32 [B, S], padded with kPadId (masked by src_lengths)
  Tensor src_lengths;  // i32 [B]
  Tensor tgt_in;       // i32 [B, T]: BOS y_1 .. y_n, padded (a window: w_0 .. w_n-1)
  Tensor tgt_out;      // i32 [B * T]: y_1 .. y_n EOS, padded with kIgnore (w_1 .. w_n)
  Tensor tgt_lengths;  // i32 [B]: n + 1 (a window: n)
  std::vector<int64_t> indices;  // example index of each row
  int64_t src_tokens = 0, tgt_tokens = 0;  // real tokens (tgt counts EOS)
  int64_t rows() const { return static_cast<int64_t>(indices.size()); }
  /// The batch with its tensors on `device` (itself, sharing them, when they are there).
  Batch to(Device device) const {
    Batch b = *this;
    for (Tensor* t : {&b.src, &b.src_lengths, &b.tgt_in, &b.tgt_out, &b.tgt_lengths})
      if (t->defined()) *t = t->to(device);
    return b;
  }
};

/// The token stream of a language model's text: a character vocabulary reads the text as one
/// stream after a beginning-of-text token; a subword vocabulary reads every non-empty line as a
/// document: BOS, its ids, EOS. Training, validation and `attend eval-lm` all read text so.
std::vector<int32_t> lm_stream(const Tokenizer& tok, const std::string& text);

/// Language-model windows (Layout::kWindow) of block + 1 ids of `stream`, one starting every
/// `stride` ids; the last one may be shorter.
std::vector<Example> lm_windows(const std::vector<int32_t>& stream, int64_t block, int64_t stride);

/// BERT's rule for a vocabulary: its mask id (-1 when it has none), ordinary ids from 4 (the
/// specials pad, unk, bos, eos come first).
MaskRule mask_rule(const Tokenizer& tok, int64_t vocab);

/// A kSequence batch corrupted by `rule` with draws from Philox(seed, stream, position): tgt_in
/// holds the corrupted ids, tgt_out the original id at chosen positions and kIgnore elsewhere, and
/// tgt_tokens counts the chosen positions (what the loss is normalised by).
Batch mask_batch(const Batch& b, const MaskRule& rule, uint64_t seed, uint64_t stream);

/// One encoder-only input (Layout::kSequence): BOS, the ids of `line` (cut so that the whole
/// fits in max_positions), EOS.
Example mlm_sentence(const Tokenizer& tok, const std::string& line, int64_t max_positions);
/// Masked-LM sentences: every non-empty line of `text` as mlm_sentence. Training, validation and
/// eval-lm read so.
std::vector<Example> mlm_sentences(const Tokenizer& tok, const std::string& text,
                                   int64_t max_positions);

/// Builds the padded tensors for the given examples (in the given order); translation pairs
/// are framed by `frame`.
Batch make_batch(const std::vector<Example>& data, const std::vector<int64_t>& indices,
                 Frame frame = {});

/// Splits `order` (example indices) into batches whose padded size
/// rows * max(S, T + 1) stays within max_tokens (a single over-long example gets its own batch).
std::vector<std::vector<int64_t>> pack_batches(const std::vector<Example>& data,
                                               const std::vector<int64_t>& order,
                                               int64_t max_tokens);

/// The batches of one training epoch: a Philox shuffle of all examples, sorted by length in
/// windows of ~`sort_batches` batches, packed, and the batch order shuffled again.
std::vector<std::vector<int64_t>> epoch_plan(const std::vector<Example>& data, int64_t max_tokens,
                                             uint64_t seed, int64_t epoch,
                                             int64_t sort_batches = 100);

/// Batches sorted by length, in one deterministic order (validation / translation); the
/// caller restores input order from Batch::indices.
std::vector<std::vector<int64_t>> sorted_plan(const std::vector<Example>& data, int64_t max_tokens);

/// Which batches of a stream one data-parallel rank builds: counting from the stream's start,
/// batch k belongs to rank (k / run) % ranks (a global step takes run = train.accumulate
/// batches per rank, ranks x run in all). The others' items come without a batch.
struct Share {
  int64_t rank = 0, ranks = 1, run = 1;
  bool owns(int64_t k) const { return (k / run) % ranks == rank; }
};

/// An endless stream of training batches from position (epoch, index), prepared by a
/// background thread `prefetch` batches ahead.
class BatchStream {
 public:
  BatchStream(const std::vector<Example>& data, int64_t max_tokens, uint64_t seed, int64_t epoch,
              int64_t index, int64_t prefetch = 8, Share share = {}, Frame frame = {});
  ~BatchStream();
  BatchStream(const BatchStream&) = delete;
  BatchStream& operator=(const BatchStream&) = delete;

  struct Item {
    Batch batch;
    int64_t epoch = 0, index = 0;  // where this batch sits in the plan
    int64_t epoch_batches = 0;     // batches in its epoch
    bool owned = true;             // false: another rank's batch (not built)
  };
  Item next();

 private:
  void run();
  const std::vector<Example>& data_;
  int64_t max_tokens_;
  uint64_t seed_;
  int64_t epoch_, index_;
  size_t prefetch_;
  Share share_;
  Frame frame_;
  std::deque<Item> queue_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::exception_ptr error_;
  std::thread thread_;
};

}  // namespace attend::data
