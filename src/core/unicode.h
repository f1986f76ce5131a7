// Unicode for text handling: UTF-8 <-> code points, general categories, lowercasing and
// canonical decomposition, from the tables tools/gen_unicode_tables.py generates (what the
// metrics' tokenizers and WordPiece's text cleaning read).
#pragma once
#include <string>

namespace attend {

/// Code points of a UTF-8 string; a byte that starts no valid sequence becomes U+FFFD.
std::u32string utf8_decode(const std::string& s);
std::string utf8_encode(const std::u32string& s);

/// Unicode White_Space (the characters Python's str.split() splits on).
bool is_space(char32_t c);
/// The Unicode White_Space property (is_space less U+001C..U+001F: regular expressions' \s).
bool is_white_space(char32_t c);
/// General categories: L, P, N, S, C but not Cn (control, format, private use, surrogate), Zs,
/// Mn.
bool is_letter(char32_t c);
bool is_punctuation(char32_t c);
bool is_number(char32_t c);
bool is_symbol(char32_t c);
bool is_other(char32_t c);
bool is_space_separator(char32_t c);
bool is_nonspacing_mark(char32_t c);

/// Python's str.strip() (str.lstrip() with only `left`, str.rstrip() with only `right`) of
/// UTF-8 text: the is_space code points at either end removed.
std::string python_strip(const std::string& s, bool left = true, bool right = true);

/// The lowercase of one code point (Python's str.lower() where that is one code point).
char32_t to_lower(char32_t c);
/// Python's str.lower() of a UTF-8 string (İ becomes i + U+0307, as there).
std::string lowercase(const std::string& s);
std::u32string lowercase(const std::u32string& s);

/// The canonical decomposition of every code point (NFD without the canonical reordering of
/// combining marks), with the nonspacing marks (Mn) removed: accents stripped as BERT's
/// tokenizers strip them. Reordering only permutes marks, so removing them makes it moot.
std::u32string strip_accents(const std::u32string& s);

}  // namespace attend
