// Special tokens written in text ("[MASK]", "<|endoftext|>"): the imported tokenizers match
// them in the raw text before anything else, as HuggingFace's tokenizers match their added
// tokens.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace attend::data {

struct SpecialToken {
  std::string text;
  int32_t id;
};

/// Calls on_text for each stretch of `s` between special tokens (empty stretches too) and
/// on_special with the id of each special token found: the leftmost match, the longest one
/// when several start there.
void split_at_specials(const std::string& s, const std::vector<SpecialToken>& specials,
                       const std::function<void(const std::string&)>& on_text,
                       const std::function<void(int32_t)>& on_special);

}  // namespace attend::data
