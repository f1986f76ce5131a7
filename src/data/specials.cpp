// Special tokens in text (see specials.h).
#include "data/specials.h"

namespace attend::data {

void split_at_specials(const std::string& s, const std::vector<SpecialToken>& specials,
                       const std::function<void(const std::string&)>& on_text,
                       const std::function<void(int32_t)>& on_special) {
  for (size_t at = 0;;) {
    size_t best = std::string::npos, best_len = 0;
    int32_t best_id = -1;
    for (const SpecialToken& t : specials) {
      const size_t p = t.text.empty() ? std::string::npos : s.find(t.text, at);
      if (p != std::string::npos && (p < best || (p == best && t.text.size() > best_len)))
        best = p, best_len = t.text.size(), best_id = t.id;
    }
    on_text(s.substr(at, (best == std::string::npos ? s.size() : best) - at));
    if (best == std::string::npos) return;
    on_special(best_id);
    at = best + best_len;
  }
}

}  // namespace attend::data
