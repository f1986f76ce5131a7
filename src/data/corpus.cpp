// Corpus reading (see corpus.h).
#include "data/corpus.h"

#include <zlib.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"
#include "core/utf8.h"

namespace attend::data {

std::vector<std::string> read_lines(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");  // reads plain files transparently too
  ATTEND_CHECK(f != nullptr, "{}: cannot open: {}", path, std::strerror(errno ? errno : ENOENT));
  gzbuffer(f, 1 << 17);
  std::vector<std::string> lines;
  std::string current;
  char buf[1 << 16];
  for (;;) {
    const int n = gzread(f, buf, sizeof(buf));
    if (n < 0) {
      int code = 0;
      const std::string msg = gzerror(f, &code);
      gzclose(f);
      ATTEND_FAIL("{}: read failed after {} lines: {}", path, lines.size(), msg);
    }
    if (n == 0) break;
    for (int i = 0; i < n; ++i) {
      if (buf[i] == '\n') {
        if (!current.empty() && current.back() == '\r') current.pop_back();
        lines.push_back(std::move(current));
        current.clear();
      } else {
        current.push_back(buf[i]);
      }
    }
  }
  gzclose(f);
  if (!current.empty()) {  // last line without a newline
    if (current.back() == '\r') current.pop_back();
    lines.push_back(std::move(current));
  }
  return lines;
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    if (end > start) lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

Text read_text(const std::string& path, BadUtf8 policy) {
  Text t;
  for (const std::string& line : read_lines(path)) {
    ++t.lines;
    if (!valid_utf8(line)) {
      ATTEND_CHECK(policy == BadUtf8::kSkip,
                   "{}:{}: invalid UTF-8 (set data.bad_utf8 skip to leave such lines out)", path,
                   t.lines);
      ++t.skipped_utf8;
      continue;
    }
    t.text += line;
    t.text += '\n';
  }
  return t;
}

namespace {

bool blank(const std::string& s) {
  for (char c : s)
    if (c != ' ' && c != '\t') return false;
  return true;
}

}  // namespace

ParallelCorpus read_parallel(const std::string& src_path, const std::string& tgt_path,
                             BadUtf8 policy) {
  std::vector<std::string> src = read_lines(src_path), tgt = read_lines(tgt_path);
  ATTEND_CHECK(src.size() == tgt.size(),
               "parallel corpus: {} has {} lines but {} has {} lines (the files must be "
               "line-aligned)", src_path, src.size(), tgt_path, tgt.size());
  ParallelCorpus c;
  c.lines = static_cast<int64_t>(src.size());
  c.src.reserve(src.size());
  c.tgt.reserve(tgt.size());
  for (size_t i = 0; i < src.size(); ++i) {
    const bool ok_s = valid_utf8(src[i]), ok_t = valid_utf8(tgt[i]);
    if (!ok_s || !ok_t) {
      ATTEND_CHECK(policy == BadUtf8::kSkip,
                   "{}:{}: invalid UTF-8 (use data.bad_utf8: skip to skip such lines)",
                   ok_s ? tgt_path : src_path, i + 1);
      ++c.skipped_utf8;
      continue;
    }
    if (blank(src[i]) || blank(tgt[i])) {
      ++c.skipped_empty;
      continue;
    }
    c.src.push_back(std::move(src[i]));
    c.tgt.push_back(std::move(tgt[i]));
  }
  return c;
}

}  // namespace attend::data
