// Reading corpora: plain UTF-8 text, one sentence per line, optionally gzip-compressed
// (detected from the content, not the name). Source and target files must be line-aligned.
// Errors name the file and, for bad bytes, the line; nothing is silently dropped -- skipped
// lines are counted and reported.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace attend::data {

/// Every line of a (possibly gzipped) text file, without the trailing "\n" or "\r\n".
std::vector<std::string> read_lines(const std::string& path);

/// The non-empty lines of text (split at "\n").
std::vector<std::string> split_lines(const std::string& text);

enum class BadUtf8 { kError, kSkip };

struct ParallelCorpus {
  std::vector<std::string> src, tgt;
  int64_t lines = 0;         // lines read from each file
  int64_t skipped_utf8 = 0;  // pairs with invalid UTF-8 (BadUtf8::kSkip)
  int64_t skipped_empty = 0; // pairs with an empty (or all-blank) side
};

struct Text {
  std::string text;          // the lines, each ended by "\n" (CRLF read as LF)
  int64_t lines = 0;         // lines read
  int64_t skipped_utf8 = 0;  // lines with invalid UTF-8 (BadUtf8::kSkip)
};

/// A whole (possibly gzipped) text file, for language models: invalid UTF-8 is an error naming
/// file:line (kError), or that line is left out and counted (kSkip).
Text read_text(const std::string& path, BadUtf8 policy = BadUtf8::kError);

/// Reads a line-aligned pair of files. Different line counts -> an error naming both files and
/// both counts; invalid UTF-8 -> an error naming file:line (kError) or the pair is skipped and
/// counted (kSkip); empty pairs are skipped and counted.
ParallelCorpus read_parallel(const std::string& src_path, const std::string& tgt_path,
                             BadUtf8 policy = BadUtf8::kError);

}  // namespace attend::data
