// T5's tokenizer (see t5_vocab.h).
#include "data/t5_vocab.h"

#include <sentencepiece_processor.h>

#include <sstream>

#include "core/error.h"
#include "core/unicode.h"
#include "core/utf8.h"

namespace attend::data {
namespace {

constexpr std::string_view kHeader = "attend-t5-vocab 1 ";

// transformers' clean_up_tokenization: no space before punctuation and English contractions.
std::string clean_up_spaces(std::string s) {
  static const std::pair<const char*, const char*> kRules[] = {
      {" .", "."},     {" ?", "?"},   {" !", "!"},   {" ,", ","},     {" ' ", "'"},
      {" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
  for (const auto& [from, to] : kRules) {
    const std::string f(from), t(to);
    std::string out;
    size_t at = 0;
    for (size_t hit; (hit = s.find(f, at)) != std::string::npos; at = hit + f.size()) {
      out.append(s, at, hit - at);
      out += t;
    }
    out.append(s, at, std::string::npos);
    s = std::move(out);
  }
  return s;
}

}  // namespace

T5Vocab::T5Vocab(const std::string& spm, int64_t extra_ids, int64_t rows, bool clean_up,
                 const std::string& name)
    : spm_bytes_(spm),
      sp_(std::make_unique<sentencepiece::SentencePieceProcessor>()),
      extra_ids_(extra_ids),
      rows_(rows),
      clean_up_(clean_up) {
  const auto st = sp_->LoadFromSerializedProto(spm);
  ATTEND_CHECK(st.ok(), "{}: spiece.model is not a SentencePiece model: {}", name, st.ToString());
  pieces_ = sp_->GetPieceSize();
  ATTEND_CHECK(extra_ids_ >= 0 && extra_ids_ <= 100000, "{}: extra_ids {} outside [0, 100000]",
               name, extra_ids_);
  ATTEND_CHECK(rows_ >= pieces_ + extra_ids_,
               "{}: the model's {} token rows are fewer than the tokenizer's {} pieces and {} "
               "extra ids",
               name, rows_, pieces_, extra_ids_);
  pad_ = sp_->pad_id(), unk_ = sp_->unk_id(), eos_ = sp_->eos_id();
  ATTEND_CHECK(pad_ >= 0 && unk_ >= 0 && eos_ >= 0,
               "{}: spiece.model needs pad, unk and end pieces (has ids {}, {} and {})", name, pad_,
               unk_, eos_);
  for (const int32_t id : {eos_, unk_, pad_}) specials_.push_back({sp_->IdToPiece(id), id});
  for (int64_t i = 0; i < extra_ids_; ++i)
    specials_.push_back(
        {format("<extra_id_{}>", i), static_cast<int32_t>(pieces_ + extra_ids_ - 1 - i)});
}

T5Vocab::~T5Vocab() = default;
T5Vocab::T5Vocab(T5Vocab&&) noexcept = default;
T5Vocab& T5Vocab::operator=(T5Vocab&&) noexcept = default;

bool T5Vocab::is_serialized(const std::string& bytes) { return bytes.rfind(kHeader, 0) == 0; }

T5Vocab T5Vocab::parse(const std::string& serialized, const std::string& name) {
  const size_t eol = serialized.find('\n');
  ATTEND_CHECK(is_serialized(serialized) && eol != std::string::npos,
               "{}: not a serialised T5 vocabulary", name);
  std::istringstream header(serialized.substr(kHeader.size(), eol - kHeader.size()));
  int64_t extra = 0, rows = 0, clean_up = 0;
  header >> extra >> rows >> clean_up;
  ATTEND_CHECK(!header.fail(), "{}: the T5 vocabulary's header line does not parse", name);
  return T5Vocab(serialized.substr(eol + 1), extra, rows, clean_up != 0, name);
}

std::string T5Vocab::serialize() const {
  return format("{}{} {} {}\n", kHeader, extra_ids_, rows_, clean_up_ ? 1 : 0) + spm_bytes_;
}

void T5Vocab::split(const std::string& text, const std::function<void(const std::string&)>& on_text,
                    const std::function<void(int32_t)>& on_special) const {
  ATTEND_CHECK(valid_utf8(text), "tokenizer: invalid UTF-8 in '{}'",
               repair_utf8(text.substr(0, 80)));
  // Stretches and special tokens in order (-1: a stretch), then the sentinels' whitespace
  // swallowed from their neighbours.
  std::vector<std::pair<int32_t, std::string>> parts;
  split_at_specials(
      text, specials_, [&](const std::string& s) { parts.emplace_back(-1, s); },
      [&](int32_t id) { parts.emplace_back(id, std::string()); });
  const auto sentinel = [&](int32_t id) { return id >= pieces_ && id < pieces_ + extra_ids_; };
  for (size_t i = 0; i < parts.size(); ++i) {
    if (!sentinel(parts[i].first)) continue;
    if (i + 1 < parts.size() && parts[i + 1].first < 0)
      parts[i + 1].second = python_strip(parts[i + 1].second, true, false);
    if (i > 0 && parts[i - 1].first < 0)
      parts[i - 1].second = python_strip(parts[i - 1].second, false, true);
  }
  for (const auto& [id, s] : parts) {
    if (id >= 0)
      on_special(id);
    else if (!s.empty())
      on_text(s);
  }
}

std::vector<int32_t> T5Vocab::encode(const std::string& text) const {
  std::vector<int32_t> ids;
  split(
      text,
      [&](const std::string& s) {
        std::vector<int> p;
        const auto st = sp_->Encode(s, &p);
        ATTEND_CHECK(st.ok(), "tokenizer: cannot encode '{}': {}", s.substr(0, 80), st.ToString());
        ids.insert(ids.end(), p.begin(), p.end());
      },
      [&](int32_t id) { ids.push_back(id); });
  return ids;
}

std::vector<std::string> T5Vocab::pieces(const std::string& text) const {
  std::vector<std::string> out;
  for (const int32_t id : encode(text)) out.push_back(piece(id));
  return out;
}

std::string T5Vocab::piece(int32_t id) const {
  if (id < pieces_) return sp_->IdToPiece(id);
  if (id < pieces_ + extra_ids_) return format("<extra_id_{}>", pieces_ + extra_ids_ - 1 - id);
  return "";
}

bool T5Vocab::is_special(int32_t id) const {
  return id == pad_ || id == unk_ || id == eos_ || id >= pieces_;
}

std::string T5Vocab::decode(const std::vector<int32_t>& ids) const {
  std::vector<std::string> pieces;
  for (const int32_t id : ids)
    if (id >= 0 && id < rows_ && !is_special(id)) pieces.push_back(sp_->IdToPiece(id));
  // The first piece's word-start mark is removed before joining (transformers adds the prefix
  // space it stands for when encoding, and takes it back here).
  if (!pieces.empty() && pieces[0].rfind("\u2581", 0) == 0) pieces[0].erase(0, 3);
  std::string out;
  const auto st = sp_->Decode(pieces, &out);
  ATTEND_CHECK(st.ok(), "tokenizer: cannot decode: {}", st.ToString());
  out = python_strip(out);
  return clean_up_ ? clean_up_spaces(out) : out;
}

}  // namespace attend::data
