// Unicode helpers for the metrics: UTF-8 <-> code points, the whitespace Python's str.split()
// splits on, and lowercasing of the Latin, Greek and Cyrillic letters (what str.lower() does to
// them), so that `--lowercase` is right for European languages, not only for ASCII: equal to
// str.lower() on U+0000..U+017F and U+0380..U+042F (checked over every code point) and for ẞ;
// letters of other blocks stay as they are.
#pragma once
#include <string>

namespace attend::eval {

/// Code points of a UTF-8 string; a byte that starts no valid sequence becomes U+FFFD.
std::u32string utf8_decode(const std::string& s);
std::string utf8_encode(const std::u32string& s);

/// Unicode White_Space (the characters Python's str.split() splits on).
bool is_space(char32_t c);

/// Lowercase of one code point for Latin-1, Latin Extended-A, Greek and Cyrillic capitals.
char32_t to_lower(char32_t c);

/// The string with to_lower applied to every code point.
std::string lowercase(const std::string& s);

}  // namespace attend::eval
