// attend::Error and the ATTEND_CHECK macro: caller mistakes throw an Error whose message names
// the op, the shapes involved and the source location. Messages use "{}" placeholders.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace attend {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {
inline void format_into(std::ostringstream& os, std::string_view fmt) { os << fmt; }

template <typename T, typename... Rest>
void format_into(std::ostringstream& os, std::string_view fmt, const T& v, const Rest&... rest) {
  const size_t pos = fmt.find("{}");
  if (pos == std::string_view::npos) {
    os << fmt;
    return;
  }
  os << fmt.substr(0, pos) << v;
  format_into(os, fmt.substr(pos + 2), rest...);
}
}  // namespace detail

/// Formats `fmt`, replacing each "{}" with the next argument (streamed with operator<<).
template <typename... Args>
std::string format(std::string_view fmt, const Args&... args) {
  std::ostringstream os;
  detail::format_into(os, fmt, args...);
  return os.str();
}

[[noreturn]] void throw_error(const std::string& message, const char* file, int line);

}  // namespace attend

#define ATTEND_CHECK(cond, ...)                                                  \
  do {                                                                           \
    if (!(cond)) ::attend::throw_error(::attend::format(__VA_ARGS__), __FILE__, __LINE__); \
  } while (0)

#define ATTEND_FAIL(...) ::attend::throw_error(::attend::format(__VA_ARGS__), __FILE__, __LINE__)
