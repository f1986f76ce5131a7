// Byte-level BPE (see byte_bpe.h).
#include "data/byte_bpe.h"

#include <array>
#include <limits>
#include <sstream>

#include "core/error.h"
#include "core/unicode.h"
#include "core/utf8.h"

namespace attend::data {
namespace {

constexpr std::string_view kHeader = "attend-bytebpe 1";

// GPT-2's byte map: the printable bytes stand for themselves, the others for U+0100 onwards.
struct ByteMap {
  std::array<std::string, 256> to_char;
  std::unordered_map<char32_t, unsigned char> to_byte;
  ByteMap() {
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      const char32_t c = printable ? static_cast<char32_t>(b) : next++;
      to_char[static_cast<size_t>(b)] = utf8_encode(std::u32string(1, c));
      to_byte[c] = static_cast<unsigned char>(b);
    }
  }
};
const ByteMap& byte_map() {
  static const ByteMap m;
  return m;
}

enum class Kind { kSpace, kLetter, kNumber, kOther };
Kind kind(char32_t c) {
  if (is_white_space(c)) return Kind::kSpace;
  if (is_letter(c)) return Kind::kLetter;
  if (is_number(c)) return Kind::kNumber;
  return Kind::kOther;
}

// GPT-2's pre-split of a stretch of text (see byte_bpe.h for the pattern): the alternatives in
// order at each position, the first that matches taking its longest match.
std::vector<std::u32string> pre_split(const std::u32string& s) {
  std::vector<std::u32string> out;
  const size_t n = s.size();
  const auto run = [&](size_t j, Kind k) {
    while (j < n && kind(s[j]) == k) ++j;
    return j;
  };
  for (size_t i = 0; i < n;) {
    size_t end = i;
    if (s[i] == '\'') {  // 's 't 're 've 'm 'll 'd (case-sensitive)
      for (const std::u32string_view c : {U"s", U"t", U"re", U"ve", U"m", U"ll", U"d"})
        if (s.compare(i + 1, c.size(), c) == 0) {
          end = i + 1 + c.size();
          break;
        }
    }
    if (end == i) {  // ' ?' then letters, numbers or others
      const size_t j = s[i] == ' ' ? i + 1 : i;
      if (j < n && kind(s[j]) != Kind::kSpace) end = run(j, kind(s[j]));
    }
    if (end == i) {  // whitespace: \s+(?!\S), else \s+
      const size_t k = run(i, Kind::kSpace);
      end = k == n || k - i == 1 ? k : k - 1;
    }
    out.push_back(s.substr(i, end - i));
    i = end;
  }
  return out;
}

}  // namespace

ByteBpe::ByteBpe(std::vector<std::string> tokens, const std::vector<std::string>& merges,
                 const std::vector<int32_t>& specials, const std::string& name)
    : tokens_(std::move(tokens)), merges_(merges) {
  ATTEND_CHECK(!tokens_.empty(), "{}: the vocabulary is empty", name);
  for (size_t i = 0; i < tokens_.size(); ++i) {
    const std::string& t = tokens_[i];
    ATTEND_CHECK(!t.empty() && t.find('\n') == std::string::npos && valid_utf8(t),
                 "{}: token {} is empty, holds a newline or is not UTF-8", name, i);
    const auto [it, fresh] = ids_.emplace(t, static_cast<int32_t>(i));
    ATTEND_CHECK(fresh, "{}: token '{}' has two ids ({} and {})", name, t, it->second, i);
  }
  for (size_t r = 0; r < merges_.size(); ++r) {
    const std::string& m = merges_[r];
    const size_t sp = m.find(' ');
    ATTEND_CHECK(sp != std::string::npos && sp > 0 && sp + 1 < m.size() &&
                     m.find(' ', sp + 1) == std::string::npos,
                 "{}: merge {} ('{}') must be two tokens separated by one space", name, r + 1, m);
    ranks_.emplace(m, static_cast<int32_t>(r));  // a repeated merge keeps its first rank
  }
  for (int32_t id : specials) {
    ATTEND_CHECK(id >= 0 && id < vocab_size(), "{}: special token id {} outside the vocabulary",
                 name, id);
    specials_.push_back({tokens_[static_cast<size_t>(id)], id});
  }
}

bool ByteBpe::is_serialized(const std::string& bytes) { return bytes.rfind(kHeader, 0) == 0; }

ByteBpe ByteBpe::parse(const std::string& serialized, const std::string& name) {
  std::istringstream in(serialized);
  std::string line;
  std::getline(in, line);
  ATTEND_CHECK(is_serialized(line), "{}: line 1: not an attend byte-level BPE vocabulary", name);
  long long n = -1, m = -1;
  std::string specials;
  std::istringstream header(line.substr(kHeader.size()));
  std::string field;
  while (header >> field) {
    if (field.rfind("tokens=", 0) == 0)
      n = std::atoll(field.c_str() + 7);
    else if (field.rfind("merges=", 0) == 0)
      m = std::atoll(field.c_str() + 7);
    else if (field.rfind("specials=", 0) == 0)
      specials = field.substr(9);
    else
      ATTEND_FAIL("{}: line 1: unexpected '{}'", name, field);
  }
  ATTEND_CHECK(n > 0 && m >= 0, "{}: line 1: needs tokens=N (N > 0) and merges=M", name);
  std::vector<std::string> tokens, merges;
  for (long long i = 0; i < n + m; ++i) {
    ATTEND_CHECK(std::getline(in, line), "{}: ends at line {}, expected {} lines", name, i + 2,
                 n + m + 1);
    (i < n ? tokens : merges).push_back(line);
  }
  std::vector<int32_t> ids;
  std::istringstream list(specials);
  for (std::string id; std::getline(list, id, ',');) ids.push_back(std::atoi(id.c_str()));
  return ByteBpe(std::move(tokens), merges, ids, name);
}

std::string ByteBpe::serialize() const {
  std::string specials;
  for (const auto& s : specials_) {
    if (!specials.empty()) specials += ',';
    specials += std::to_string(s.id);
  }
  std::string out = format("{} tokens={} merges={} specials={}\n", kHeader, tokens_.size(),
                           merges_.size(), specials);
  for (const auto& t : tokens_) out += t + "\n";
  for (const auto& m : merges_) out += m + "\n";
  return out;
}

bool ByteBpe::is_special(int32_t id) const {
  for (const auto& s : specials_)
    if (s.id == id) return true;
  return false;
}

void ByteBpe::piece_ids(const std::string& piece, std::vector<int32_t>& out) const {
  const ByteMap& map = byte_map();
  std::vector<std::string> symbols;
  for (unsigned char b : piece) symbols.push_back(map.to_char[b]);
  // Merge the adjacent pair of the lowest rank, all its occurrences left to right, until no
  // pair has a rank.
  while (symbols.size() > 1) {
    int32_t best = std::numeric_limits<int32_t>::max();
    for (size_t i = 0; i + 1 < symbols.size(); ++i) {
      const auto it = ranks_.find(symbols[i] + " " + symbols[i + 1]);
      if (it != ranks_.end() && it->second < best) best = it->second;
    }
    if (best == std::numeric_limits<int32_t>::max()) break;
    const std::string& merge = merges_[static_cast<size_t>(best)];
    const std::string left = merge.substr(0, merge.find(' ')),
                      right = merge.substr(merge.find(' ') + 1);
    std::vector<std::string> next;
    for (size_t i = 0; i < symbols.size(); ++i) {
      if (i + 1 < symbols.size() && symbols[i] == left && symbols[i + 1] == right) {
        next.push_back(left + right);
        ++i;
      } else {
        next.push_back(symbols[i]);
      }
    }
    symbols = std::move(next);
  }
  for (const auto& s : symbols) {
    const auto it = ids_.find(s);
    ATTEND_CHECK(it != ids_.end(),
                 "tokenizer: '{}' has no id in the vocabulary (a byte-level "
                 "vocabulary holds every byte)",
                 s);
    out.push_back(it->second);
  }
}

std::vector<int32_t> ByteBpe::encode(const std::string& text) const {
  std::vector<int32_t> ids;
  split_at_specials(
      text, specials_,
      [&](const std::string& span) {
        for (const auto& piece : pre_split(utf8_decode(span))) piece_ids(utf8_encode(piece), ids);
      },
      [&](int32_t id) { ids.push_back(id); });
  return ids;
}

std::string ByteBpe::decode(const std::vector<int32_t>& ids, bool skip_special) const {
  const ByteMap& map = byte_map();
  std::string bytes;
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab_size() || (skip_special && is_special(id))) continue;
    if (is_special(id)) {
      bytes += piece(id);
      continue;
    }
    for (char32_t c : utf8_decode(piece(id))) {
      const auto it = map.to_byte.find(c);
      if (it != map.to_byte.end())
        bytes += static_cast<char>(it->second);
      else
        bytes += utf8_encode(std::u32string(1, c));  // not a byte character: as it is
    }
  }
  return repair_utf8(bytes);
}

}  // namespace attend::data
