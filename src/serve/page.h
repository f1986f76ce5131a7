// The web page served at GET /: src/serve/web/index.html, compiled into the binary by CMake
// (cmake/embed_page.cmake writes it into a generated source as a raw string literal).
#pragma once
#include <string_view>

namespace attend::serve {

/// The page's HTML, CSS and script (one self-contained document).
std::string_view page_html();

}  // namespace attend::serve
