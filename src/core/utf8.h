// UTF-8 well-formedness: what every reader of untrusted text (corpora, translation input, a
// future server's requests) checks before tokenizing.
#pragma once
#include <string>
#include <string_view>

namespace attend {

/// True when s is well-formed UTF-8 (no overlongs, surrogates or code points > U+10FFFF).
bool valid_utf8(std::string_view s);
/// s with every ill-formed byte sequence replaced by U+FFFD.
std::string repair_utf8(std::string_view s);

}  // namespace attend
