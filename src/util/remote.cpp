#include "coffer/util/remote.hpp"

#include "coffer/util/error.hpp"

namespace coffer {
namespace {

// "[host]:path" after the optional "user@"; nullopt when `rest` is not in that form.
std::optional<RemoteSpec> parse_bracketed(std::string user, std::string_view rest) {
  if (rest.empty() || rest.front() != '[') return std::nullopt;
  auto close = rest.find(']');
  if (close == std::string_view::npos || close + 1 >= rest.size() || rest[close + 1] != ':')
    return std::nullopt;
  auto host = rest.substr(1, close - 1);
  if (host.empty() || host.find('/') != std::string_view::npos) return std::nullopt;
  return RemoteSpec{std::move(user), std::string(host), std::string(rest.substr(close + 2))};
}

bool plain_shell_char(char c) {
  // Characters no POSIX shell treats specially anywhere in a word. '=' is left out so that a
  // first word is never taken for a variable assignment; '~' and '#' matter at a word start.
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || c == '.' || c == '/' || c == ',' || c == ':' || c == '@' || c == '%' ||
         c == '+';
}

}  // namespace

std::optional<RemoteSpec> parse_remote(std::string_view spec) {
  // The user part ends at an '@' that comes before any ':', '/' or '['.
  std::string user;
  std::string_view rest = spec;
  auto special = spec.find_first_of(":/[@");
  if (special != std::string_view::npos && spec[special] == '@') {
    user = std::string(spec.substr(0, special));
    rest = spec.substr(special + 1);
  }
  // A '[' opens an IPv6 address; without the closing "]:" the spec is not an address at all.
  if (!rest.empty() && rest.front() == '[') return parse_bracketed(std::move(user), rest);

  auto colon = rest.find(':');
  if (colon == std::string_view::npos || colon == 0) return std::nullopt;
  auto slash = rest.find('/');
  if (slash != std::string_view::npos && slash < colon) return std::nullopt;
  return RemoteSpec{std::move(user), std::string(rest.substr(0, colon)),
                    std::string(rest.substr(colon + 1))};
}

std::string format_remote(const RemoteSpec& remote) {
  std::string text;
  if (!remote.user.empty()) text += remote.user + '@';
  if (remote.host.find(':') != std::string::npos)
    text += '[' + remote.host + ']';
  else
    text += remote.host;
  return text + ':' + remote.path;
}

std::string shell_quote(std::string_view word) {
  if (word.find('\0') != std::string_view::npos)
    fail(ErrorKind::usage, "quote remote argument", std::string(word.substr(0, word.find('\0'))),
         "contains a NUL byte, which a command line cannot carry");
  if (word.empty()) return "''";
  bool plain = true;
  for (char c : word) plain = plain && plain_shell_char(c);
  if (plain) return std::string(word);
  std::string quoted = "'";
  for (char c : word) {
    if (c == '\'')
      quoted += "'\\''";
    else
      quoted += c;
  }
  return quoted + "'";
}

std::string shell_quote(const std::vector<std::string>& argv) {
  std::string line;
  for (const auto& word : argv) {
    if (!line.empty()) line += ' ';
    line += shell_quote(word);
  }
  return line;
}

}  // namespace coffer
