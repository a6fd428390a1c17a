// Shared with restore, which selects what to give back with the same syntax.
// Include/exclude rules with rsync's pattern syntax (the subset users rely on):
//   "- PATTERN" excludes, "+ PATTERN" includes; the first rule that matches decides.
//   A leading '/' anchors the pattern at the source root; a trailing '/' matches directories
//   only; a pattern without '/' matches the last component at any depth; with a '/' inside it
//   matches the end of the path at a component boundary. '*' and '?' do not cross '/', '**'
//   does, '[...]' is a character class. An excluded directory is not descended into.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace coffer::transfer {

class Filter {
 public:
  // "- PATTERN" / "+ PATTERN", or a bare pattern taken as an exclude.
  void add_rule(std::string_view rule);
  void add_exclude(std::string_view pattern) { add(false, pattern); }
  void add_include(std::string_view pattern) { add(true, pattern); }
  // One rule per line; blank lines and lines starting with '#' or ';' are ignored.
  void add_rules_from(const std::filesystem::path& file);

  // `path` is relative to the source root ("a/b/c"); the root itself is never excluded.
  bool excluded(std::string_view path, bool is_dir) const;
  // The rules as "- PATTERN" / "+ PATTERN" lines, to send to the agent.
  std::vector<std::string> rules() const;
  bool empty() const { return rules_.empty(); }

 private:
  struct Rule {
    bool include;
    std::string pattern;  // without the anchor and trailing '/'
    bool anchored;
    bool dir_only;
    bool whole_path;  // contains '/' or '**': matched against the path, not the last name
    bool double_star;
  };
  void add(bool include, std::string_view pattern);
  static bool matches(const Rule& r, std::string_view path, bool is_dir);
  std::vector<Rule> rules_;
};

}  // namespace coffer::transfer
