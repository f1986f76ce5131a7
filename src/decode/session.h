// Step-level decoding, the one decoding core of every decoder: a Session owns a preallocated
// key/value cache and a set of live hypotheses; requests join it (admit), every step() extends
// each live hypothesis by one token, and finished requests leave it (retire). It serves an
// encoder-decoder model (a request is a source sentence: encoded at admit, decoding starts from
// BOS) and a decoder-only model (a request is a prompt: read in one causal pass at admit, whose
// last position gives the first token). Beam search, greedy search and sampling are per
// request, so one running batch can mix them; a request's result does not depend on what else
// is in the batch (up to the rounding of batched products). The model is only read: threads
// may run their own sessions on one shared model.
//
// Beam search keeps `beam` live hypotheses per sentence, all sentences side by side in one
// decoder batch (a sentence's hypotheses are contiguous rows). Each step it takes the 2 * beam
// best extensions of a sentence's hypotheses by total log-probability; an extension by EOS
// among the first `beam` of them finishes a hypothesis, the best non-EOS ones fill the next
// beam. A sentence is done when none is live, or when `beam` hypotheses have finished and the
// best live one, scored at its current length, is worse than the `beam`-th best finished one.
// Finished hypotheses are ranked by log_prob / lp(length) with the GNMT length penalty
// lp(L) = ((5 + L) / 6)^alpha, where L counts the output tokens and the EOS. A hypothesis that
// reaches the maximum length (source length + max_extra, and max_length when set; a prompt's
// max_new, and the model's context) finishes there without EOS. With beam = 1 the search is exactly
// greedy search (tested).
//
// Cache: each hypothesis owns a self-attention slot. A hypothesis extended once keeps its
// parent's slot; a parent extended k > 1 times has its prefix copied into k - 1 free slots (the
// only copies decoding makes); slots of dropped hypotheses return to a free list.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "core/allocator.h"
#include "data/tokenizer.h"
#include "nn/transformer.h"

namespace attend::decode {

struct Hypothesis {
  std::vector<int32_t> tokens;  // without BOS and EOS
  double score = 0;             // log_prob / lp(length): what ranks hypotheses
  double log_prob = 0;          // sum of the tokens' log-probabilities (EOS included if emitted)
  bool ended = false;           // finished by EOS (not by the length limit)
};

struct SearchOptions {
  int64_t beam = 4;         // hypotheses kept per sentence; 1 = greedy
  double alpha = 0.6;       // length penalty exponent (0: rank by total log-probability)
  int64_t n_best = 1;       // hypotheses returned per sentence, best first (<= beam)
  int64_t max_extra = 50;   // an output has at most source length + max_extra tokens
  int64_t max_length = 0;   // > 0: and at most max_length tokens, whatever the source's length
  int64_t max_new = 256;    // decoder-only: a prompt's output has at most max_new tokens
  int64_t min_length = 0;   // EOS is not allowed before this many output tokens
  bool stop_at_eos = true;  // false: EOS is an ordinary token (decoder-only generation)
  // Sampling instead of search (beam must be 1): each token is drawn from
  // softmax(logits / temperature) restricted to the top_k most likely tokens (0: all) and to the
  // smallest set of most likely tokens whose probability reaches top_p. Deterministic for a
  // seed: a request's random stream (its input index) fixes its draws, whatever the batching.
  bool sample = false;
  double temperature = 1.0;
  int64_t top_k = 0;
  double top_p = 1.0;
  uint64_t seed = 0;

  /// Throws attend::Error naming the offending option.
  void validate() const;
};

/// GNMT length penalty ((5 + length) / 6)^alpha.
double length_penalty(int64_t length, double alpha);

/// Cache-slot copies a beam step asks for: positions 0..lengths[i]-1 of slot from[i] into to[i].
struct SlotCopies {
  std::vector<int32_t> from, to, lengths;
};
/// Cache slots of the hypotheses a beam step keeps: child j extends parent[j], one of the step's
/// hypotheses, which holds slot slots[p] with written[p] positions. Slots of hypotheses without
/// children return to free_slots; a parent's first child inherits its slot, later children
/// take a free one, and the copy of the parent's positions is appended to `copies`.
std::vector<int32_t> child_slots(const std::vector<int32_t>& slots,
                                 const std::vector<int32_t>& written,
                                 const std::vector<int64_t>& parent,
                                 std::vector<int32_t>& free_slots, SlotCopies& copies);

/// Longest output allowed for a source of `src_len` tokens: src_len + max_extra, at most
/// max_length when that is > 0 (learned positions cap it too).
int64_t max_output_length(const nn::EncoderDecoder& model, int64_t src_len, int64_t max_extra,
                          int64_t max_length = 0);
/// Longest output of a decoder-only model after a prompt of `prompt_len` tokens: max_new, and
/// what fits the context (the last token is never fed back).
int64_t max_output_length(const nn::DecoderOnly& model, int64_t prompt_len, int64_t max_new);

/// The length of the longest prefix of `text` that does not end inside a UTF-8 character.
size_t complete_prefix(const std::string& text);

/// One sentence or prompt to decode.
struct Request {
  /// Encoder-decoder: the encoder ids (TransformerConfig::source applied), not empty.
  /// Decoder-only: the prompt ids, 1 to the model's context.
  std::vector<int32_t> source;
  SearchOptions options;
  uint64_t stream = 0;  // sampling stream: the input index, so draws ignore batching
  int64_t id = 0;       // the caller's handle, returned with the result
  /// Target tokens every output starts with (without BOS), as CTranslate2's target_prefix: they
  /// are forced one per step, scored like chosen ones, and the search goes on from them.
  std::vector<int32_t> prefix = {};
  bool pieces = false;  // hand its text out as it is drawn (take_text; needs a tokenizer)
};

struct Result {
  int64_t id = 0;
  std::vector<Hypothesis> hypotheses;  // n_best, best first
};

class Session {
 public:
  /// `tokenizer` (may be null: no text) serves take_text; model and tokenizer must outlive the
  /// session.
  explicit Session(const nn::EncoderDecoder& model, const data::Tokenizer* tokenizer = nullptr);
  explicit Session(const nn::DecoderOnly& model, const data::Tokenizer* tokenizer = nullptr);
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  /// Encoder-decoder: encodes the sources (one encoder batch) and adds one live hypothesis per
  /// request; they take part from the next step(). Decoder-only: reads the prompts (one causal
  /// pass) and extends each by its first token. Requests are validated first (nothing is
  /// admitted then).
  void admit(const std::vector<Request>& requests);
  /// Extends every live hypothesis by one token; requests that finish move to the retired list.
  void step();
  /// The requests finished since the last call, in the order they finished (admission order
  /// within a step).
  std::vector<Result> retire();
  /// The text drawn since the last call by the requests that asked for pieces, as (id, piece)
  /// in order: whole UTF-8 characters as they complete (a beam search's text when it ends); a
  /// request's last piece comes when it finishes. Empty without a tokenizer.
  std::vector<std::pair<int64_t, std::string>> take_text() { return std::exchange(text_, {}); }
  /// Drops request `id` (a client that left): its hypotheses and cache slots are freed and it
  /// gives no result. Returns false when no active request has that id (it finished already or
  /// never joined).
  bool cancel(int64_t id);
  /// Live hypotheses (decoder rows of the next step) and requests still decoding.
  int64_t live_rows() const { return static_cast<int64_t>(live_.size()); }
  int64_t active_requests() const {
    return static_cast<int64_t>(sentences_.size() - free_sentences_.size());
  }
  bool idle() const { return live_.empty(); }

 private:
  struct Sentence {
    int64_t id = 0;
    SearchOptions options;
    uint64_t stream = 0;
    int64_t limit = 0;            // longest output
    std::vector<int32_t> prefix;  // forced first tokens
    int32_t memory_slot = -1;     // encoder slot (encoder-decoder)
    int32_t source_length = 0;
    int32_t prompt_length = 1;  // positions before the first output token: BOS, or the prompt
    std::vector<Hypothesis> finished;
    bool active = false;  // decoding (false: a free entry)
    bool pieces = false;  // text handed out as it is drawn
    size_t sent = 0;      // bytes of that text already handed out
  };
  struct Live {
    int64_t sentence;  // index into sentences_
    std::vector<int32_t> tokens;
    double log_prob;
    int32_t slot;  // self-attention slot holding its positions (-1: not assigned yet)
  };
  // Extends `rows` (whole sentences, contiguous) by one token each from logits [rows, V]: forced
  // prefix tokens, draws, or beam candidates; finishes what ends. Returns the next live rows
  // (cache slots assigned; copies made).
  std::vector<Live> advance(const std::vector<Live>& rows, const Tensor& logits);
  // What advance reads of the logits, computed on their device and fetched in one transfer.
  struct Readback;
  Readback read_step(const std::vector<Live>& rows, const Tensor& logits) const;
  void admit_prompts(const std::vector<Request>& requests, const std::vector<int64_t>& limits);
  void finish_sentence(int64_t s);
  void release_sentence(int64_t s);
  void stream_text(Sentence& s, const std::vector<int32_t>& tokens, bool last);
  int64_t new_sentence(const Request& r, int64_t limit);

  const nn::Model& model_;
  const nn::EncoderDecoder* encoder_decoder_ = nullptr;  // one of these two is set
  const nn::DecoderOnly* decoder_only_ = nullptr;
  const data::Tokenizer* tokenizer_;
  nn::KvCache cache_;
  Arena arena_;                      // one step's tensors; reset at the start of each call
  std::vector<Sentence> sentences_;  // by index; finished entries are reused
  std::vector<int64_t> free_sentences_;
  std::vector<int32_t> free_slots_, free_memory_slots_;
  std::vector<Live> live_;  // a sentence's hypotheses are contiguous, sentences in admission order
  std::vector<Result> retired_;
  std::vector<std::pair<int64_t, std::string>> text_;
  int64_t reserved_rows_ = 0;  // sum of the active requests' beams: the slots they may hold
};

/// Decodes `sources` as one batch: the n_best hypotheses of each, best first. streams[i] is
/// source i's sampling stream (default: i); prefixes[i] (when given) the tokens output i starts
/// with (Request::prefix). An empty source gives one empty hypothesis.
std::vector<std::vector<Hypothesis>> search(const nn::EncoderDecoder& model,
                                            const std::vector<std::vector<int32_t>>& sources,
                                            const SearchOptions& options,
                                            const std::vector<uint64_t>& streams = {},
                                            const std::vector<std::vector<int32_t>>& prefixes = {});

/// Called by the batch decoders (search_all, Translator::translate, Generator::generate) before
/// every decoding step; it may throw to stop decoding there (how a Python caller's Ctrl-C
/// cancels a long call within one step). Empty: never called.
using StepCheck = std::function<void()>;

/// `search` over sources in length-sorted batches of about `max_tokens` source tokens (one
/// session reused); results in input order, source i sampling from stream i and starting with
/// prefixes[i] when given.
std::vector<std::vector<Hypothesis>> search_all(
    const nn::EncoderDecoder& model, const std::vector<std::vector<int32_t>>& sources,
    int64_t max_tokens, const SearchOptions& options,
    const std::vector<std::vector<int32_t>>& prefixes = {}, const StepCheck& check = {});

}  // namespace attend::decode
