// libFuzzer target: corpus and prompt files (data/corpus.h), plain or gzipped (detected from the
// bytes). The input is written to a file and read as every command reads text: read_lines,
// read_text with both UTF-8 policies, read_parallel against itself. Each either reads or throws
// attend::Error naming the file (and line); what it reads is valid UTF-8 where it must be.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "common.h"
#include "core/error.h"
#include "core/utf8.h"
#include "data/corpus.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path =
      attend::fuzz::write("text.txt", {reinterpret_cast<const char*>(data), size});
  try {
    (void)attend::data::read_lines(path);
  } catch (const attend::Error&) {
  }
  for (const auto policy : {attend::data::BadUtf8::kError, attend::data::BadUtf8::kSkip}) {
    try {
      const attend::data::Text t = attend::data::read_text(path, policy);
      if (!attend::valid_utf8(t.text)) std::abort();  // never hand on invalid UTF-8
    } catch (const attend::Error&) {
    }
    try {
      const attend::data::ParallelCorpus c = attend::data::read_parallel(path, path, policy);
      if (c.src.size() != c.tgt.size()) std::abort();
      for (const auto& s : c.src)
        if (!attend::valid_utf8(s)) std::abort();
    } catch (const attend::Error&) {
    }
  }
  return 0;
}
