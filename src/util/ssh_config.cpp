#include "ssh_config.hpp"

#include <glob.h>
#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>

namespace coffer {
namespace {

constexpr int kMaxIncludeDepth = 16;  // as OpenSSH: a loop of Includes must end

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool wildcard(std::string_view pattern, std::string_view text) {
  if (pattern.empty()) return text.empty();
  if (pattern.front() == '*') {
    for (std::size_t skip = 0; skip <= text.size(); ++skip)
      if (wildcard(pattern.substr(1), text.substr(skip))) return true;
    return false;
  }
  if (text.empty()) return false;
  if (pattern.front() != '?' && pattern.front() != text.front()) return false;
  return wildcard(pattern.substr(1), text.substr(1));
}

// Words of a config line after its keyword; double quotes group words.
std::vector<std::string> words(std::string_view rest) {
  std::vector<std::string> out;
  std::string cur;
  bool in_word = false, quoted = false;
  for (char c : rest) {
    if (c == '"') {
      quoted = !quoted;
      in_word = true;
    } else if (!quoted && (c == ' ' || c == '\t')) {
      if (in_word) out.push_back(std::move(cur));
      cur.clear();
      in_word = false;
    } else {
      cur += c;
      in_word = true;
    }
  }
  if (in_word) out.push_back(std::move(cur));
  return out;
}

bool match_line(const std::vector<std::string>& args, std::string_view host) {
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string criterion = lower(args[i]);
    bool negate = !criterion.empty() && criterion.front() == '!';
    if (negate) criterion.erase(0, 1);
    if (criterion == "all" || criterion == "canonical" || criterion == "final") continue;
    if (i + 1 >= args.size()) return true;  // malformed: libssh complains, we only report
    const std::string& value = args[++i];
    bool hit = true;  // criteria we do not evaluate (exec, user, ...) count as matching
    if (criterion == "host" || criterion == "originalhost") hit = ssh_host_matches(value, host);
    if (hit == negate) return false;
  }
  return true;
}

class Reader {
 public:
  Reader(std::string_view host, std::string_view keyword)
      : host_(lower(host)), keyword_(lower(keyword)) {}

  bool read(const std::filesystem::path& file, const std::filesystem::path& base, int depth) {
    std::ifstream in(file);
    if (!in) return false;
    bool active = true;  // lines before the first Host or Match apply to every host
    std::string line;
    while (std::getline(in, line)) {
      auto start = line.find_first_not_of(" \t");
      if (start == std::string::npos || line[start] == '#') continue;
      std::string_view rest(line);
      rest.remove_prefix(start);
      if (!rest.empty() && rest.back() == '\r') rest.remove_suffix(1);
      auto end = rest.find_first_of(" \t=");
      std::string key = lower(rest.substr(0, end));
      rest.remove_prefix(end == std::string_view::npos ? rest.size() : end);
      auto value_start = rest.find_first_not_of(" \t");
      if (value_start != std::string_view::npos && rest[value_start] == '=')
        value_start = rest.find_first_not_of(" \t", value_start + 1);
      rest.remove_prefix(value_start == std::string_view::npos ? rest.size() : value_start);
      std::vector<std::string> args = words(rest);

      if (key == "host") {
        active = false;
        bool excluded = false;
        for (const auto& p : args) {
          if (!p.empty() && p.front() == '!') {
            if (ssh_host_matches(p.substr(1), host_)) excluded = true;
          } else if (ssh_host_matches(p, host_)) {
            active = true;
          }
        }
        active = active && !excluded;
      } else if (key == "match") {
        active = match_line(args, host_);
      } else if (!active) {
        continue;
      } else if (key == "include" && depth < kMaxIncludeDepth) {
        for (const auto& pattern : args)
          for (const auto& included : expand(pattern, base))
            if (read(included, base, depth + 1) && found_) return true;
      } else if (key == keyword_ && !args.empty()) {
        found_ = SshConfigValue{args.front(), file};
        return true;
      }
    }
    return true;
  }

  std::optional<SshConfigValue> result() const { return found_; }

 private:
  static std::vector<std::filesystem::path> expand(const std::string& pattern,
                                                   const std::filesystem::path& base) {
    std::string full = pattern;
    if (full.rfind("~/", 0) == 0) {
      const char* home = std::getenv("HOME");
      full = std::string(home ? home : "") + full.substr(1);
    } else if (full.empty() || full.front() != '/') {
      full = (base / full).native();
    }
    std::vector<std::filesystem::path> out;
    glob_t g{};
    if (::glob(full.c_str(), 0, nullptr, &g) == 0)
      for (std::size_t i = 0; i < g.gl_pathc; ++i) out.emplace_back(g.gl_pathv[i]);
    ::globfree(&g);
    return out;
  }

  std::string host_, keyword_;
  std::optional<SshConfigValue> found_;
};

}  // namespace

bool ssh_host_matches(std::string_view patterns, std::string_view host) {
  std::string h = lower(host);
  bool hit = false;
  while (true) {
    auto comma = patterns.find(',');
    std::string p = lower(patterns.substr(0, comma));
    bool negate = !p.empty() && p.front() == '!';
    if (negate && wildcard(std::string_view(p).substr(1), h)) return false;
    if (!negate && wildcard(p, h)) hit = true;
    if (comma == std::string_view::npos) return hit;
    patterns.remove_prefix(comma + 1);
  }
}

std::optional<SshConfigValue> ssh_config_value(const std::vector<std::filesystem::path>& files,
                                               std::string_view host, std::string_view keyword) {
  Reader reader(host, keyword);
  for (const auto& file : files) {
    reader.read(file, file.parent_path(), 0);
    if (auto found = reader.result()) return found;
  }
  return std::nullopt;
}

}  // namespace coffer
