// Token-based batching (see batcher.h).
#include "data/batcher.h"

#include <algorithm>
#include <numeric>

#include "core/error.h"
#include "core/rng.h"
#include "data/corpus.h"
#include "data/tokenizer.h"

namespace attend::data {
namespace {

// Target positions of an example: BOS + target (a window: its ids but the last; a sequence: its
// ids).
int64_t target_positions(const Example& e) {
  const int64_t n = static_cast<int64_t>(e.tgt.size());
  return e.layout == Layout::kWindow ? n - 1 : e.layout == Layout::kSequence ? n : n + 1;
}

int64_t cost(const Example& e) {
  return std::max<int64_t>(static_cast<int64_t>(e.src.size()), target_positions(e));
}

void shuffle(std::vector<int64_t>& v, uint64_t seed, uint64_t stream) {
  for (size_t i = v.size(); i > 1; --i) {
    const auto r = philox4x32(seed, stream, i);
    const uint64_t x = (static_cast<uint64_t>(r[0]) << 32) | r[1];
    std::swap(v[i - 1], v[x % i]);
  }
}

}  // namespace

std::vector<int32_t> lm_stream(const Tokenizer& tok, const std::string& text) {
  std::vector<int32_t> ids;
  if (tok.is_stream()) {
    ids.push_back(tok.bos_id());
    for (int32_t id : tok.encode(text)) ids.push_back(id);
    return ids;
  }
  for (const std::string& line : split_lines(text)) {
    ids.push_back(tok.bos_id());
    for (int32_t id : tok.encode(line)) ids.push_back(id);
    ids.push_back(tok.eos_id());
  }
  return ids;
}

Example mlm_sentence(const Tokenizer& tok, const std::string& line, int64_t max_positions) {
  ATTEND_CHECK(max_positions >= 3, "mlm_sentences: max_positions {} leaves no room for a token",
               max_positions);
  Example e;
  e.layout = Layout::kSequence;
  e.tgt.push_back(tok.bos_id());
  for (int32_t id : tok.encode(line)) e.tgt.push_back(id);
  if (static_cast<int64_t>(e.tgt.size()) + 1 > max_positions)
    e.tgt.resize(static_cast<size_t>(max_positions - 1));
  e.tgt.push_back(tok.eos_id());
  return e;
}

std::vector<Example> mlm_sentences(const Tokenizer& tok, const std::string& text,
                                   int64_t max_positions) {
  std::vector<Example> out;
  for (const std::string& line : split_lines(text))
    out.push_back(mlm_sentence(tok, line, max_positions));
  return out;
}

std::vector<Example> lm_windows(const std::vector<int32_t>& stream, int64_t block, int64_t stride) {
  ATTEND_CHECK(block >= 1 && stride >= 1, "lm_windows: block {} and stride {} must be >= 1",
               block, stride);
  std::vector<Example> out;
  const int64_t n = static_cast<int64_t>(stream.size());
  for (int64_t start = 0; start + 1 < n; start += stride) {
    const int64_t end = std::min(n, start + block + 1);
    Example e;
    e.layout = Layout::kWindow;
    e.tgt.assign(stream.begin() + start, stream.begin() + end);
    out.push_back(std::move(e));
    if (end == n) break;
  }
  return out;
}

Batch make_batch(const std::vector<Example>& data, const std::vector<int64_t>& indices,
                 Frame frame) {
  HeapScope heap;  // batches outlive the step arena (prefetch)
  const int64_t B = static_cast<int64_t>(indices.size());
  int64_t S = 1, T = 1;
  for (int64_t i : indices) {
    S = std::max<int64_t>(S, static_cast<int64_t>(data[i].src.size()));
    T = std::max<int64_t>(T, target_positions(data[i]));
  }
  std::vector<int32_t> src(B * S, kPadId), tin(B * T, kPadId), tout(B * T, kIgnore), sl(B), tl(B);
  Batch b;
  for (int64_t r = 0; r < B; ++r) {
    const Example& e = data[indices[r]];
    if (e.layout == Layout::kSequence) {  // the ids in and out (mask_batch chooses targets)
      const int64_t n = static_cast<int64_t>(e.tgt.size());
      ATTEND_CHECK(n >= 1 && e.src.empty(), "make_batch: a sequence needs ids and no source");
      std::copy(e.tgt.begin(), e.tgt.end(), tin.begin() + r * T);
      std::copy(e.tgt.begin(), e.tgt.end(), tout.begin() + r * T);
      sl[r] = 1;
      tl[r] = static_cast<int32_t>(n);
      b.tgt_tokens += n;
      continue;
    }
    if (e.layout == Layout::kWindow) {  // ids 0..n-1 in, 1..n out
      const int64_t n = static_cast<int64_t>(e.tgt.size()) - 1;
      ATTEND_CHECK(n >= 1 && e.src.empty(), "make_batch: a window needs >= 2 ids and no source");
      std::copy(e.tgt.begin(), e.tgt.end() - 1, tin.begin() + r * T);
      std::copy(e.tgt.begin() + 1, e.tgt.end(), tout.begin() + r * T);
      sl[r] = 1;
      tl[r] = static_cast<int32_t>(n);
      b.tgt_tokens += n;
      continue;
    }
    std::copy(e.src.begin(), e.src.end(), src.begin() + r * S);
    tin[r * T] = frame.bos;
    std::copy(e.tgt.begin(), e.tgt.end(), tin.begin() + r * T + 1);
    std::copy(e.tgt.begin(), e.tgt.end(), tout.begin() + r * T);
    tout[r * T + static_cast<int64_t>(e.tgt.size())] = frame.eos;
    sl[r] = static_cast<int32_t>(std::max<size_t>(e.src.size(), 1));  // empty source: one pad key
    tl[r] = static_cast<int32_t>(e.tgt.size() + 1);
    b.src_tokens += static_cast<int64_t>(e.src.size());
    b.tgt_tokens += static_cast<int64_t>(e.tgt.size()) + 1;
  }
  b.src = Tensor::from_vector(src, {B, S});
  b.tgt_in = Tensor::from_vector(tin, {B, T});
  b.tgt_out = Tensor::from_vector(tout, {B * T});
  b.src_lengths = Tensor::from_vector(sl, {B});
  b.tgt_lengths = Tensor::from_vector(tl, {B});
  b.indices = indices;
  return b;
}

MaskRule mask_rule(const Tokenizer& tok, int64_t vocab) {
  MaskRule r;
  r.mask_id = tok.mask_id();
  r.first_token = 4;
  r.vocab = vocab;
  return r;
}

Batch mask_batch(const Batch& b, const MaskRule& rule, uint64_t seed, uint64_t stream) {
  ATTEND_CHECK(rule.mask_id >= 0 && rule.vocab > rule.first_token,
               "mask_batch: the vocabulary has no mask token (or no ordinary token)");
  HeapScope heap;
  std::vector<int32_t> in = b.tgt_in.to_vector<int32_t>(), out(in.size(), kIgnore);
  const std::vector<int32_t> lengths = b.tgt_lengths.to_vector<int32_t>();
  const int64_t B = b.tgt_in.size(0), T = b.tgt_in.size(1);
  Batch m = b;
  m.tgt_tokens = 0;
  for (int64_t r = 0; r < B; ++r)
    for (int64_t t = 0; t < lengths[r]; ++t) {
      const size_t i = static_cast<size_t>(r * T + t);
      if (in[i] < rule.first_token || in[i] == rule.mask_id) continue;
      const auto u = philox4x32(seed, stream, static_cast<uint64_t>(r) * 1000003u + t);
      const double chosen = u[0] * 0x1p-32, how = u[1] * 0x1p-32;
      if (chosen >= rule.rate) continue;
      out[i] = in[i];
      ++m.tgt_tokens;
      if (how < rule.mask) {
        in[i] = rule.mask_id;
      } else if (how < rule.mask + rule.random) {
        const auto span = static_cast<uint32_t>(rule.vocab - rule.first_token);
        int32_t v = rule.first_token + static_cast<int32_t>(u[2] % span);
        if (v == rule.mask_id) v = rule.first_token + static_cast<int32_t>((u[2] + 1) % span);
        in[i] = v;
      }
    }
  m.tgt_in = Tensor::from_vector(in, {B, T});
  m.tgt_out = Tensor::from_vector(out, {B * T});
  return m;
}

std::vector<std::vector<int64_t>> pack_batches(const std::vector<Example>& data,
                                               const std::vector<int64_t>& order,
                                               int64_t max_tokens) {
  std::vector<std::vector<int64_t>> out;
  std::vector<int64_t> cur;
  int64_t longest = 0;
  for (int64_t i : order) {
    const int64_t c = std::max(longest, cost(data[i]));
    if (!cur.empty() && c * static_cast<int64_t>(cur.size() + 1) > max_tokens) {
      out.push_back(std::move(cur));
      cur.clear();
      longest = 0;
    }
    cur.push_back(i);
    longest = std::max(longest, cost(data[i]));
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

std::vector<std::vector<int64_t>> epoch_plan(const std::vector<Example>& data, int64_t max_tokens,
                                             uint64_t seed, int64_t epoch, int64_t sort_batches) {
  std::vector<int64_t> order(data.size());
  std::iota(order.begin(), order.end(), 0);
  shuffle(order, seed, mix_stream(static_cast<uint64_t>(epoch), 1));
  int64_t total = 0;
  for (const auto& e : data) total += cost(e);
  const int64_t mean =
      data.empty() ? 1 : std::max<int64_t>(1, total / static_cast<int64_t>(data.size()));
  const int64_t window =
      std::max<int64_t>(1, sort_batches * std::max<int64_t>(1, max_tokens / mean));
  std::vector<std::vector<int64_t>> batches;
  for (size_t w = 0; w < order.size(); w += static_cast<size_t>(window)) {
    std::vector<int64_t> chunk(
        order.begin() + static_cast<int64_t>(w),
        order.begin() + static_cast<int64_t>(std::min(order.size(), w + window)));
    std::stable_sort(chunk.begin(), chunk.end(), [&](int64_t a, int64_t b) {
      return std::make_pair(data[a].src.size(), data[a].tgt.size()) <
             std::make_pair(data[b].src.size(), data[b].tgt.size());
    });
    for (auto& b : pack_batches(data, chunk, max_tokens)) batches.push_back(std::move(b));
  }
  std::vector<int64_t> perm(batches.size());
  std::iota(perm.begin(), perm.end(), 0);
  shuffle(perm, seed, mix_stream(static_cast<uint64_t>(epoch), 2));
  std::vector<std::vector<int64_t>> out;
  out.reserve(batches.size());
  for (int64_t p : perm) out.push_back(std::move(batches[p]));
  return out;
}

std::vector<std::vector<int64_t>> sorted_plan(const std::vector<Example>& data,
                                              int64_t max_tokens) {
  std::vector<int64_t> order(data.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return data[a].src.size() < data[b].src.size(); });
  return pack_batches(data, order, max_tokens);
}

BatchStream::BatchStream(const std::vector<Example>& data, int64_t max_tokens, uint64_t seed,
                         int64_t epoch, int64_t index, int64_t prefetch, Share share, Frame frame)
    : data_(data),
      max_tokens_(max_tokens),
      seed_(seed),
      epoch_(epoch),
      index_(index),
      prefetch_(static_cast<size_t>(std::max<int64_t>(1, prefetch))),
      share_(share),
      frame_(frame) {
  ATTEND_CHECK(!data.empty(), "batcher: the training set is empty");
  ATTEND_CHECK(share.ranks >= 1 && share.rank >= 0 && share.rank < share.ranks && share.run >= 1,
               "batcher: rank {} of {} (run {}) is not a valid share", share.rank, share.ranks,
               share.run);
  thread_ = std::thread([this] { run(); });
}

BatchStream::~BatchStream() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void BatchStream::run() {
  try {
    int64_t epoch = epoch_, index = index_, k = 0;
    for (;;) {
      const auto plan = epoch_plan(data_, max_tokens_, seed_, epoch);
      for (; index < static_cast<int64_t>(plan.size()); ++index, ++k) {
        const bool own = share_.owns(k);
        Item item{own ? make_batch(data_, plan[index], frame_) : Batch{}, epoch, index,
                  static_cast<int64_t>(plan.size()), own};
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stop_ || queue_.size() < prefetch_; });
        if (stop_) return;
        queue_.push_back(std::move(item));
        cv_.notify_all();
      }
      ++epoch;
      index = 0;
    }
  } catch (...) {
    std::lock_guard<std::mutex> lock(mu_);
    error_ = std::current_exception();
    cv_.notify_all();
  }
}

BatchStream::Item BatchStream::next() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return !queue_.empty() || error_; });
  if (queue_.empty() && error_) std::rethrow_exception(error_);
  Item item = std::move(queue_.front());
  queue_.pop_front();
  cv_.notify_all();
  return item;
}

}  // namespace attend::data
