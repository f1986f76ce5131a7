// WordPiece tokenization (see wordpiece.h).
#include "data/wordpiece.h"

#include <sstream>

#include "core/error.h"
#include "core/unicode.h"
#include "core/utf8.h"
#include "data/specials.h"

namespace attend::data {
namespace {

constexpr std::string_view kHeader = "attend-wordpiece 1";
constexpr size_t kMaxWordChars = 100;  // longer words are [UNK]
constexpr std::string_view kContinuation = "##";
const char* const kSpecialTokens[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};

bool is_cjk(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
         (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
         (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

bool is_word_punctuation(char32_t c) {
  return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) ||
         (c >= 123 && c <= 126) || is_punctuation(c);
}

bool flag(const std::string& field, const std::string& key, const std::string& name) {
  ATTEND_CHECK(field == key + "=0" || field == key + "=1",
               "{}: line 1: expected {}=0 or {}=1, got '{}'", name, key, key, field);
  return field.back() == '1';
}

}  // namespace

WordPiece::WordPiece(const std::string& text, const WordPieceOptions& options,
                     const std::string& name)
    : options_(options) {
  ATTEND_CHECK(valid_utf8(text), "{}: not valid UTF-8", name);
  size_t line_no = 0;
  for (size_t at = 0; at < text.size();) {
    size_t end = text.find('\n', at);
    if (end == std::string::npos) end = text.size();
    std::string token = text.substr(at, end - at);
    at = end + 1;
    ++line_no;
    if (!token.empty() && token.back() == '\r') token.pop_back();
    ATTEND_CHECK(!token.empty(), "{}: line {}: an empty token", name, line_no);
    const auto id = static_cast<int32_t>(tokens_.size());
    const auto [it, fresh] = ids_.emplace(token, id);
    ATTEND_CHECK(fresh, "{}: line {}: token '{}' is listed twice (first at line {})", name, line_no,
                 token, it->second + 1);
    tokens_.push_back(std::move(token));
  }
  const auto special = [&](const char* token, bool required) {
    const auto it = ids_.find(token);
    ATTEND_CHECK(it != ids_.end() || !required, "{}: the vocabulary has no {} token", name, token);
    return it == ids_.end() ? -1 : it->second;
  };
  pad_ = special("[PAD]", true);
  unk_ = special("[UNK]", true);
  cls_ = special("[CLS]", true);
  sep_ = special("[SEP]", true);
  mask_ = special("[MASK]", false);
  for (const char* token : kSpecialTokens)
    if (const int32_t id = id_of(token); id >= 0) specials_.push_back({token, id});
}

bool WordPiece::is_serialized(const std::string& bytes) { return bytes.rfind(kHeader, 0) == 0; }

WordPiece WordPiece::parse(const std::string& serialized, const std::string& name) {
  const size_t eol = serialized.find('\n');
  ATTEND_CHECK(is_serialized(serialized) && eol != std::string::npos,
               "{}: line 1: not an attend WordPiece vocabulary", name);
  std::istringstream header(serialized.substr(kHeader.size(), eol - kHeader.size()));
  std::string f[4], extra;
  header >> f[0] >> f[1] >> f[2] >> f[3];
  ATTEND_CHECK(!(header >> extra), "{}: line 1: unexpected '{}'", name, extra);
  WordPieceOptions o;
  o.lowercase = flag(f[0], "lowercase", name);
  o.strip_accents = flag(f[1], "strip_accents", name);
  o.chinese_chars = flag(f[2], "chinese_chars", name);
  o.clean_text = flag(f[3], "clean_text", name);
  // Line numbers in errors count from the file's first line.
  WordPiece w(serialized.substr(eol + 1), o, name + " (vocabulary from line 2)");
  return w;
}

std::string WordPiece::serialize() const {
  std::string out = format("{} lowercase={} strip_accents={} chinese_chars={} clean_text={}\n",
                           kHeader, int(options_.lowercase), int(options_.strip_accents),
                           int(options_.chinese_chars), int(options_.clean_text));
  for (size_t i = 0; i < tokens_.size(); ++i)
    out += tokens_[i] + (i + 1 < tokens_.size() ? "\n" : "");
  return out;
}

int32_t WordPiece::id_of(const std::string& token) const {
  const auto it = ids_.find(token);
  return it == ids_.end() ? -1 : it->second;
}

std::vector<std::u32string> WordPiece::words(const std::string& text) const {
  std::u32string s;
  for (char32_t c : utf8_decode(text)) {
    if (options_.clean_text) {
      if (c == 0 || c == 0xFFFD || (is_other(c) && c != '\t' && c != '\n' && c != '\r')) continue;
      if (is_space(c)) c = U' ';
    }
    if (options_.chinese_chars && is_cjk(c)) {
      s += U' ';
      s += c;
      s += U' ';
    } else {
      s += c;
    }
  }
  if (options_.strip_accents) s = strip_accents(s);
  if (options_.lowercase) s = lowercase(s);
  std::vector<std::u32string> out;
  std::u32string word;
  const auto flush = [&] {
    if (!word.empty()) out.push_back(std::move(word));
    word.clear();
  };
  for (char32_t c : s) {
    if (is_space(c)) {
      flush();
    } else if (is_word_punctuation(c)) {
      flush();
      out.emplace_back(1, c);
    } else {
      word += c;
    }
  }
  flush();
  return out;
}

void WordPiece::word_ids(const std::u32string& word, std::vector<int32_t>& out) const {
  if (word.size() > kMaxWordChars) {
    out.push_back(unk_);
    return;
  }
  const size_t first = out.size();
  for (size_t start = 0; start < word.size();) {
    int32_t found = -1;
    size_t end = word.size();
    for (; end > start; --end) {
      std::string piece = utf8_encode(word.substr(start, end - start));
      if (start > 0) piece.insert(0, kContinuation);
      if ((found = id_of(piece)) >= 0) break;
    }
    if (found < 0) {
      out.resize(first);
      out.push_back(unk_);
      return;
    }
    out.push_back(found);
    start = end;
  }
}

std::vector<int32_t> WordPiece::encode(const std::string& text) const {
  std::vector<int32_t> ids;
  split_at_specials(
      text, specials_,
      [&](const std::string& span) {
        for (const auto& word : words(span)) word_ids(word, ids);
      },
      [&](int32_t id) { ids.push_back(id); });
  return ids;
}

std::vector<std::string> WordPiece::pieces(const std::string& text) const {
  std::vector<std::string> out;
  for (int32_t id : encode(text)) out.push_back(piece(id));
  return out;
}

std::string WordPiece::decode(const std::vector<int32_t>& ids) const {
  std::string out;
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab_size() || id == pad_ || id == cls_ || id == sep_ || id == mask_)
      continue;
    const std::string& t = piece(id);
    // Continuations, and the four punctuation marks HuggingFace's decoder cleans up, attach.
    const bool attach =
        t.rfind(kContinuation, 0) == 0 || t == "." || t == "?" || t == "!" || t == ",";
    if (!out.empty() && !attach) out += ' ';
    out += t.rfind(kContinuation, 0) == 0 && !out.empty() ? t.substr(kContinuation.size()) : t;
  }
  return out;
}

}  // namespace attend::data
