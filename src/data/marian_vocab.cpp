// MarianMT's tokenizer (see marian_vocab.h).
#include "data/marian_vocab.h"

#include <sentencepiece_processor.h>

#include <sstream>

#include "core/error.h"
#include "core/unicode.h"
#include "core/utf8.h"

namespace attend::data {
namespace {

constexpr std::string_view kHeader = "attend-marian-vocab 1 ";

std::unique_ptr<sentencepiece::SentencePieceProcessor> load_spm(const std::string& bytes,
                                                                const std::string& name,
                                                                const char* which) {
  auto sp = std::make_unique<sentencepiece::SentencePieceProcessor>();
  const auto st = sp->LoadFromSerializedProto(bytes);
  ATTEND_CHECK(st.ok(), "{}: {} is not a SentencePiece model: {}", name, which, st.ToString());
  return sp;
}

// The spans [begin, end) of ">>.+<<" matches in `s`, left to right, as Python's re finds them:
// '.' is anything but a newline and '+' is greedy, so a match runs to the last "<<" of its line.
std::vector<std::pair<size_t, size_t>> language_codes(const std::string& s) {
  std::vector<std::pair<size_t, size_t>> out;
  for (size_t i = 0; i + 5 <= s.size();) {
    if (s.compare(i, 2, ">>") == 0) {
      const size_t eol = std::min(s.find('\n', i + 2), s.size());
      const size_t j = eol >= 2 ? s.rfind("<<", eol - 2) : std::string::npos;
      if (j != std::string::npos && j >= i + 3) {
        out.emplace_back(i, j + 2);
        i = j + 2;
        continue;
      }
    }
    ++i;
  }
  return out;
}

}  // namespace

MarianVocab::MarianVocab(const std::string& source, const std::string& target,
                         std::vector<std::string> tokens, const std::string& pad,
                         const std::string& unk, const std::string& eos, const std::string& name)
    : source_bytes_(source),
      target_bytes_(target),
      source_(load_spm(source, name, "source.spm")),
      target_(load_spm(target, name, "target.spm")),
      tokens_(std::move(tokens)) {
  ATTEND_CHECK(!tokens_.empty(), "{}: the vocabulary is empty", name);
  for (size_t i = 0; i < tokens_.size(); ++i) {
    ATTEND_CHECK(tokens_[i].find('\n') == std::string::npos && valid_utf8(tokens_[i]),
                 "{}: token {} is not one line of UTF-8", name, i);
    const bool fresh = ids_.emplace(tokens_[i], static_cast<int32_t>(i)).second;
    ATTEND_CHECK(fresh, "{}: token '{}' has two ids", name, tokens_[i]);
  }
  const auto special = [&](const std::string& token, const char* role) {
    const auto it = ids_.find(token);
    ATTEND_CHECK(it != ids_.end(), "{}: the {} token '{}' is not in the vocabulary", name, role,
                 token);
    specials_.push_back({token, it->second});
    return it->second;
  };
  eos_ = special(eos, "end");
  unk_ = special(unk, "unknown");
  pad_ = special(pad, "padding");
}

MarianVocab::~MarianVocab() = default;
MarianVocab::MarianVocab(MarianVocab&&) noexcept = default;
MarianVocab& MarianVocab::operator=(MarianVocab&&) noexcept = default;

bool MarianVocab::is_serialized(const std::string& bytes) { return bytes.rfind(kHeader, 0) == 0; }

MarianVocab MarianVocab::parse(const std::string& serialized, const std::string& name) {
  const size_t eol = serialized.find('\n');
  ATTEND_CHECK(is_serialized(serialized) && eol != std::string::npos,
               "{}: not a serialised Marian vocabulary", name);
  std::istringstream header(serialized.substr(kHeader.size(), eol - kHeader.size()));
  size_t source_size = 0, target_size = 0, count = 0;
  int64_t pad = 0, unk = 0, eos = 0;
  header >> source_size >> target_size >> count >> pad >> unk >> eos;
  const size_t body = eol + 1;
  ATTEND_CHECK(!header.fail() && source_size + target_size <= serialized.size() - body,
               "{}: the Marian vocabulary's header line does not fit its contents", name);
  std::vector<std::string> tokens;
  std::istringstream lines(serialized.substr(body + source_size + target_size));
  for (std::string line; std::getline(lines, line);) tokens.push_back(line);
  ATTEND_CHECK(tokens.size() == count, "{}: the Marian vocabulary lists {} tokens, not {}", name,
               tokens.size(), count);
  const auto token = [&](int64_t id) {
    ATTEND_CHECK(id >= 0 && id < static_cast<int64_t>(count),
                 "{}: special id {} outside the vocabulary", name, id);
    return tokens[static_cast<size_t>(id)];
  };
  const std::string p = token(pad), u = token(unk), e = token(eos);
  return MarianVocab(serialized.substr(body, source_size),
                     serialized.substr(body + source_size, target_size), std::move(tokens), p, u, e,
                     name);
}

std::string MarianVocab::serialize() const {
  std::string out = format("{}{} {} {} {} {} {}\n", kHeader, source_bytes_.size(),
                           target_bytes_.size(), tokens_.size(), pad_, unk_, eos_);
  out += source_bytes_;
  out += target_bytes_;
  for (const auto& t : tokens_) out += t + "\n";
  return out;
}

std::vector<std::string> MarianVocab::pieces(const std::string& text, bool target) const {
  ATTEND_CHECK(valid_utf8(text), "tokenizer: invalid UTF-8 in '{}'",
               repair_utf8(text.substr(0, 80)));
  const auto& sp = target ? *target_ : *source_;
  std::vector<std::string> out;
  split_at_specials(
      text, specials_,
      [&](const std::string& stretch) {
        if (stretch.empty()) return;
        const auto codes = language_codes(stretch);
        std::string rest;
        size_t at = 0;
        for (const auto& [b, e] : codes) {
          if (b == 0) out.push_back(stretch.substr(b, e - b));
          rest += stretch.substr(at, b - at);
          at = e;
        }
        rest += stretch.substr(at);
        std::vector<std::string> p;
        const auto st = sp.Encode(rest, &p);
        ATTEND_CHECK(st.ok(), "tokenizer: cannot encode '{}': {}", rest.substr(0, 80),
                     st.ToString());
        out.insert(out.end(), p.begin(), p.end());
      },
      [&](int32_t id) { out.push_back(piece(id)); });
  return out;
}

std::vector<int32_t> MarianVocab::encode(const std::string& text, bool target) const {
  std::vector<int32_t> ids;
  for (const auto& p : pieces(text, target)) {
    const auto it = ids_.find(p);
    ids.push_back(it == ids_.end() ? unk_ : it->second);
  }
  return ids;
}

std::string MarianVocab::decode(const std::vector<int32_t>& ids) const {
  std::vector<std::string> pieces;
  for (int32_t id : ids)
    if (id >= 0 && id < vocab_size() && id != pad_ && id != eos_ && id != unk_)
      pieces.push_back(piece(id));
  std::string out;
  const auto st = target_->Decode(pieces, &out);
  ATTEND_CHECK(st.ok(), "tokenizer: cannot decode: {}", st.ToString());
  // MarianTokenizer turns any "▁" left into a space and strips the ends.
  std::string spaced;
  for (size_t at = 0; at < out.size();) {
    const bool mark = out.compare(at, 3, "\u2581") == 0;
    spaced += mark ? ' ' : out[at];
    at += mark ? 3 : 1;
  }
  return python_strip(spaced);
}

}  // namespace attend::data
