#include "filter.hpp"

#include "coffer/transfer/backup.hpp"

#include <fnmatch.h>

#include "coffer/util/error.hpp"
#include "coffer/util/fd.hpp"

namespace coffer::transfer {

void Filter::add(bool include, std::string_view pattern) {
  if (pattern.empty()) fail(ErrorKind::usage, "add filter rule", "", "empty pattern");
  Rule r{include, std::string(pattern), false, false, false, false};
  if (r.pattern.size() > 1 && r.pattern.back() == '/') {
    r.dir_only = true;
    r.pattern.pop_back();
  }
  if (r.pattern.front() == '/') {
    r.anchored = true;
    r.pattern.erase(0, 1);
  }
  r.double_star = r.pattern.find("**") != std::string::npos;
  r.whole_path = r.anchored || r.double_star || r.pattern.find('/') != std::string::npos;
  if (r.pattern.find('\0') != std::string::npos)
    fail(ErrorKind::usage, "add filter rule", "", "pattern contains a NUL byte");
  rules_.push_back(std::move(r));
}

void Filter::add_rule(std::string_view rule) {
  if (rule.size() > 2 && (rule[0] == '-' || rule[0] == '+') && rule[1] == ' ') {
    add(rule[0] == '+', rule.substr(2));
  } else {
    add(false, rule);
  }
}

void Filter::add_rules_from(const std::filesystem::path& file) {
  std::string text = read_file(file);
  std::string_view rest = text;
  while (!rest.empty()) {
    auto nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    add_rule(line);
  }
}

std::vector<std::string> read_filter_file(const std::filesystem::path& file) {
  Filter filter;
  filter.add_rules_from(file);
  return filter.rules();
}

bool Filter::matches(const Rule& r, std::string_view path, bool is_dir) {
  if (r.dir_only && !is_dir) return false;
  int flags = r.double_star ? 0 : FNM_PATHNAME;
  std::string subject;
  if (!r.whole_path) {
    auto slash = path.rfind('/');
    subject = path.substr(slash == std::string_view::npos ? 0 : slash + 1);
    return ::fnmatch(r.pattern.c_str(), subject.c_str(), flags) == 0;
  }
  if (r.anchored) {
    subject = path;
    return ::fnmatch(r.pattern.c_str(), subject.c_str(), flags) == 0;
  }
  // Unanchored with a '/': try every tail of the path that starts at a component.
  std::size_t start = 0;
  for (;;) {
    subject = path.substr(start);
    if (::fnmatch(r.pattern.c_str(), subject.c_str(), flags) == 0) return true;
    auto slash = path.find('/', start);
    if (slash == std::string_view::npos) return false;
    start = slash + 1;
  }
}

bool Filter::excluded(std::string_view path, bool is_dir) const {
  if (path.empty()) return false;
  for (const auto& r : rules_)
    if (matches(r, path, is_dir)) return !r.include;
  return false;
}

std::vector<std::string> Filter::rules() const {
  std::vector<std::string> out;
  for (const auto& r : rules_)
    out.push_back(std::string(r.include ? "+ " : "- ") + (r.anchored ? "/" : "") + r.pattern +
                  (r.dir_only ? "/" : ""));
  return out;
}

}  // namespace coffer::transfer
