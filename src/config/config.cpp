#include "coffer/config/config.hpp"

#include <fmt/format.h>
#include <toml++/toml.h>
#include <algorithm>
#include <cstdlib>
#include <map>
#include <set>

#include "coffer/util/error.hpp"
#include "coffer/util/fd.hpp"
#include "coffer/util/remote.hpp"
#include "coffer/util/units.hpp"

namespace coffer::config {
namespace {

// Walks one TOML table, reading known keys and reporting unknown or mistyped ones.
class TableReader {
 public:
  TableReader(const toml::table& table, std::string prefix, std::vector<Diagnostic>& out)
      : table_(table), prefix_(std::move(prefix)), out_(out) {}

  ~TableReader() {
    // Unknown keys are errors: a typo like "daly = 7" must not silently keep defaults.
    for (const auto& [key, node] : table_) {
      if (!seen_.count(std::string(key.str()))) report(node, std::string(key.str()), "unknown key");
    }
  }
  TableReader(const TableReader&) = delete;

  std::string full(std::string_view key) const {
    return prefix_.empty() ? std::string(key) : prefix_ + "." + std::string(key);
  }

  void report(const toml::node& node, std::string_view key, std::string message) {
    const auto& src = node.source();
    out_.push_back({src.begin.line, src.begin.column, full(key), std::move(message)});
  }
  void report_table(std::string_view key, std::string message) {
    const auto& src = table_.source();
    out_.push_back({src.begin.line, src.begin.column, full(key), std::move(message)});
  }

  const toml::node* get(std::string_view key) {
    seen_.insert(std::string(key));
    return table_.get(key);
  }

  void string(std::string_view key, std::string& dst, bool required = false) {
    const toml::node* n = get(key);
    if (!n) {
      if (required) report_table(key, "missing required key");
      return;
    }
    if (auto v = n->value<std::string>()) {
      if (required && v->empty()) report(*n, key, "must not be empty");
      dst = *v;
    } else {
      report(*n, key, "expected a string");
    }
  }
  void path(std::string_view key, std::filesystem::path& dst, bool required = false) {
    std::string s;
    string(key, s, required);
    if (!s.empty()) dst = s;
  }
  void optional_path(std::string_view key, std::optional<std::filesystem::path>& dst) {
    std::string s;
    string(key, s);
    if (!s.empty()) dst = s;
  }
  void optional_string(std::string_view key, std::optional<std::string>& dst) {
    std::string s;
    string(key, s);
    if (!s.empty()) dst = s;
  }
  void boolean(std::string_view key, bool& dst) {
    const toml::node* n = get(key);
    if (!n) return;
    if (auto v = n->value<bool>())
      dst = *v;
    else
      report(*n, key, "expected true or false");
  }
  void count(std::string_view key, int& dst) {
    const toml::node* n = get(key);
    if (!n) return;
    auto v = n->value<std::int64_t>();
    if (!v || *v < 0 || *v > 100000)
      report(*n, key, "expected a whole number from 0 to 100000");
    else
      dst = static_cast<int>(*v);
  }
  void size(std::string_view key, std::uint64_t& dst) {
    const toml::node* n = get(key);
    if (!n) return;
    try {
      if (auto i = n->value<std::int64_t>(); i && n->is_integer() && *i > 0)
        dst = static_cast<std::uint64_t>(*i);
      else if (auto s = n->value<std::string>())
        dst = parse_size(*s, full(key));
      else
        report(*n, key, "expected a size such as \"64K\" or a number of bytes");
    } catch (const Error& e) {
      report(*n, key, e.reason());
    }
  }
  void duration(std::string_view key, std::optional<CalendarDuration>& dst) {
    const toml::node* n = get(key);
    if (!n) return;
    auto s = n->value<std::string>();
    if (!s) return report(*n, key, "expected a duration such as \"30d\", \"1y6m\" or \"36h\"");
    try {
      dst = parse_calendar_duration(*s, full(key));
    } catch (const Error& e) {
      report(*n, key, e.reason());
    }
  }
  void strings(std::string_view key, std::vector<std::string>& dst) {
    const toml::node* n = get(key);
    if (!n) return;
    const toml::array* arr = n->as_array();
    if (!arr) {
      report(*n, key, "expected an array of strings");
      return;
    }
    for (const auto& item : *arr) {
      if (auto s = item.value<std::string>())
        dst.push_back(*s);
      else
        report(item, key, "expected a string in the array");
    }
  }
  // Sub-table; returns nullptr (after reporting) if present but not a table.
  const toml::table* table(std::string_view key) {
    const toml::node* n = get(key);
    if (!n) return nullptr;
    if (const toml::table* t = n->as_table()) return t;
    report(*n, key, "expected a table");
    return nullptr;
  }
  // Array of tables ([[source]]).
  std::vector<const toml::table*> tables(std::string_view key) {
    std::vector<const toml::table*> result;
    const toml::node* n = get(key);
    if (!n) return result;
    const toml::array* arr = n->as_array();
    if (!arr) {
      report(*n, key, fmt::format("expected [[{}]] tables", key));
      return result;
    }
    for (const auto& item : *arr) {
      if (const toml::table* t = item.as_table())
        result.push_back(t);
      else
        report(item, key, fmt::format("expected [[{}]] tables", key));
    }
    return result;
  }

 private:
  const toml::table& table_;
  std::string prefix_;
  std::vector<Diagnostic>& out_;
  std::set<std::string> seen_;
};

void read_secrets(TableReader& r, SecretPaths& s) {
  r.optional_path("key_file", s.key_file);
  r.optional_path("passphrase_file", s.passphrase_file);
  r.optional_string("passphrase_command", s.passphrase_command);
}

bool valid_name(std::string_view name) {
  if (name.empty() || name == "." || name == ".." || name.size() > 64) return false;
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'))
      return false;
  return true;
}

// One address, user@domain: no spaces, commas or angle brackets. A domain without a dot is
// allowed: root@localhost is what a local MTA delivers.
bool valid_email(std::string_view a) {
  auto at = a.find('@');
  if (at == 0 || at == std::string_view::npos || a.find('@', at + 1) != std::string_view::npos)
    return false;
  std::string_view domain = a.substr(at + 1);
  if (domain.empty() || domain.front() == '.' || domain.back() == '.' ||
      domain.find("..") != std::string_view::npos)
    return false;
  for (char c : a)
    if (static_cast<unsigned char>(c) <= ' ' || c == ',' || c == '<' || c == '>' || c == ';' ||
        c == '"')
      return false;
  return true;
}

// A destination as replicate reaches it: remote [user@]host:DIR or a local directory, with the
// path normalised (trailing '/', '.', '..'; a local one also through symlinks).
std::string dest_key(const std::string& dest) {
  auto norm = [](std::filesystem::path p) {
    std::string n = p.lexically_normal().native();
    while (n.size() > 1 && n.back() == '/') n.pop_back();
    return n;
  };
  if (auto remote = parse_remote(dest)) {
    remote->path = norm(remote->path.empty() ? "." : remote->path);
    return format_remote(*remote);
  }
  std::error_code ec;
  std::filesystem::path real = std::filesystem::weakly_canonical(dest, ec);
  return norm(ec ? std::filesystem::absolute(dest) : real);
}

void read_retention(TableReader& r, Retention& k) {
  r.count("last", k.last);
  r.count("hourly", k.hourly);
  r.count("daily", k.daily);
  r.count("weekly", k.weekly);
  r.count("monthly", k.monthly);
  r.count("half_yearly", k.half_yearly);
  r.count("yearly", k.yearly);
  r.duration("within", k.within);
}

void read_document(const toml::table& root, Config& cfg, std::vector<Diagnostic>& diags) {
  TableReader top(root, "", diags);
  top.path("runtime_dir", cfg.runtime_dir);
  if (const toml::table* t = top.table("vault")) {
    TableReader r(*t, "vault", diags);
    r.path("image", cfg.vault.image, true);
    r.path("mount", cfg.vault.mount);
    read_secrets(r, cfg.vault.secrets);
  }
  if (const toml::table* t = top.table("repository")) {
    TableReader r(*t, "repository", diags);
    r.path("path", cfg.repository, true);
    if (root.get("vault")) r.report_table("path", "give [vault] or [repository], not both");
  }
  std::set<std::string> names;
  auto check_name = [&](TableReader& r, const toml::table& t, const std::string& name) {
    const toml::node* n = t.get("name");
    if (!n) return;
    if (!valid_name(name))
      r.report(*n, "name", "use letters, digits, '-', '_' or '.' (1-64)");
    else if (!names.insert(name).second)
      r.report(*n, "name", "duplicate name '" + name + "'");
  };
  int i = 0;
  for (const toml::table* t : top.tables("source")) {
    TableReader r(*t, fmt::format("source[{}]", i++), diags);
    Source s;
    r.string("name", s.name, true);
    check_name(r, *t, s.name);
    r.string("path", s.path, true);
    r.strings("exclude", s.exclude);
    r.optional_path("exclude_from", s.exclude_from);
    if (s.exclude_from && !std::filesystem::is_regular_file(*s.exclude_from)) {
      // A missing pattern file would back up everything it was meant to leave out.
      std::error_code ec;
      bool exists = std::filesystem::exists(*s.exclude_from, ec);
      r.report(*t->get("exclude_from"), "exclude_from",
               (exists ? "not a regular file: " : "no such file: ") + s.exclude_from->native());
    }
    r.boolean("one_file_system", s.one_file_system);
    r.string("remote_command", s.remote_command);
    if (const toml::table* k = r.table("keep")) {
      // The source's whole policy: what it does not name is 0, not [retention]'s value.
      TableReader kr(*k, r.full("keep"), diags);
      s.keep = Retention{0, 0, 0, 0, 0, 0, 0, std::nullopt};
      read_retention(kr, *s.keep);
    }
    r.strings("before", s.before);
    r.strings("after", s.after);
    r.strings("on_failure", s.on_failure);
    for (const char* hook : {"before", "after", "on_failure"})
      if (const toml::node* n = t->get(hook); n && n->as_array() && n->as_array()->empty())
        r.report(*n, hook, "an empty command: leave the key out instead");
    cfg.sources.push_back(std::move(s));
  }
  if (const toml::table* t = top.table("retention")) {
    TableReader r(*t, "retention", diags);
    read_retention(r, cfg.retention);
  }
  names.clear();
  std::map<std::string, std::string> dests;  // normalised dest -> target name
  i = 0;
  for (const toml::table* t : top.tables("target")) {
    TableReader r(*t, fmt::format("target[{}]", i++), diags);
    Target tg;
    r.string("name", tg.name, true);
    check_name(r, *t, tg.name);
    r.string("dest", tg.dest, true);
    if (const toml::node* n = t->get("dest"); n && !tg.dest.empty()) {
      // Two targets on one replica would each take the other's generations for tampering.
      std::string key = dest_key(tg.dest);
      if (auto [it, fresh] = dests.emplace(key, tg.name); !fresh)
        r.report(*n, "dest", "same destination as target '" + it->second + "'");
    }
    r.size("block_size", tg.block_size);
    if (!valid_block_size(tg.block_size)) {
      if (const toml::node* n = t->get("block_size")) r.report(*n, "block_size", kBlockSizeRule);
    }
    r.string("remote_command", tg.remote_command);
    cfg.targets.push_back(std::move(tg));
  }
  if (const toml::table* t = top.table("report")) {
    TableReader r(*t, "report", diags);
    r.string("email", cfg.report.email);
    if (!cfg.report.email.empty() && !valid_email(cfg.report.email))
      r.report(*t->get("email"), "email", "not an e-mail address (expected user@domain)");
    r.string("healthcheck_url", cfg.report.healthcheck_url);
    r.boolean("email_on_success", cfg.report.email_on_success);
    r.string("sendmail", cfg.report.sendmail);
    r.path("prometheus_textfile", cfg.report.prometheus_textfile);
    std::optional<CalendarDuration> warn, crit;
    r.duration("warn_after", warn);
    r.duration("crit_after", crit);
    if (warn) cfg.report.warn_after = *warn;
    if (crit) cfg.report.crit_after = *crit;
  }
  if (!cfg.repository.empty() && !cfg.targets.empty())
    top.report_table("target", "[repository] has no vault image to replicate; use [vault]");
}

}  // namespace

bool valid_block_size(std::uint64_t size) {
  return size >= 4096 && size <= (64ull << 20) && (size & (size - 1)) == 0;
}

ParseResult parse_config(std::string_view text, const std::filesystem::path& shown_path) {
  ParseResult result;
  result.config.path = shown_path;
  try {
    toml::table root = toml::parse(text, shown_path.native());
    read_document(root, result.config, result.diagnostics);
  } catch (const toml::parse_error& e) {
    const auto& src = e.source();
    result.diagnostics.push_back(
        {src.begin.line, src.begin.column, "", std::string(e.description())});
  }
  // TableReader reports unknown keys on destruction, in table order; sort by position.
  std::stable_sort(result.diagnostics.begin(), result.diagnostics.end(),
                   [](const Diagnostic& a, const Diagnostic& b) {
                     return a.line != b.line ? a.line < b.line : a.column < b.column;
                   });
  return result;
}

ParseResult load_config(const std::filesystem::path& path) {
  std::string text;
  try {
    text = read_file(path);
  } catch (const Error& e) {
    throw Error(ErrorKind::usage, "read config", path.native(), e.reason(), e.code());
  }
  return parse_config(text, path);
}

Config load_valid_config(const std::filesystem::path& path) {
  ParseResult r = load_config(path);
  if (!r.diagnostics.empty()) {
    std::string more =
        r.diagnostics.size() > 1
            ? fmt::format(" (and {} more; run 'coffer config check')", r.diagnostics.size() - 1)
            : std::string();
    fail(ErrorKind::usage, "", "", format_diagnostic(path, r.diagnostics.front()) + more);
  }
  return std::move(r.config);
}

std::filesystem::path default_config_path(const std::optional<std::filesystem::path>& cli) {
  if (cli) return *cli;
  if (const char* env = std::getenv("COFFER_CONFIG"); env && *env) return env;
  return "/etc/coffer/coffer.toml";
}

std::string format_diagnostic(const std::filesystem::path& path, const Diagnostic& d) {
  std::string where = fmt::format("{}:{}", path.native(), d.line);
  if (d.key.empty()) return fmt::format("{}: {}", where, d.message);
  return fmt::format("{}: {}: {}", where, d.key, d.message);
}

}  // namespace coffer::config
