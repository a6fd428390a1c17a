// coffer.toml: what a nightly `coffer run` does. Format and every key: docs/config.md.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "coffer/util/units.hpp"

namespace coffer::config {

struct SecretPaths {
  std::optional<std::filesystem::path> key_file;
  std::optional<std::filesystem::path> passphrase_file;
  std::optional<std::string> passphrase_command;
};

struct Vault {
  std::filesystem::path image;
  std::filesystem::path mount;  // empty: <runtime_dir>/mnt/<vault name>
  SecretPaths secrets;
};

struct Retention {
  int last = 1;
  int hourly = 0;
  int daily = 7;
  int weekly = 4;
  int monthly = 12;
  int half_yearly = 0;
  int yearly = 2;
  std::optional<CalendarDuration> within;  // keep everything this close to the newest snapshot
};

struct Source {
  std::string name;
  std::string path;  // local path or [user@]host:PATH
  std::vector<std::string> exclude;
  std::optional<std::filesystem::path> exclude_from;
  bool one_file_system = false;
  std::string remote_command;  // empty: "coffer" from the remote PATH
  // This source's own retention policy (`keep = {...}`), replacing [retention] for it; counts
  // it does not name are 0.
  std::optional<Retention> keep;
  // Hook commands run by `coffer run` (argv, no shell): before the backup (a failure skips the
  // source), after a successful one, and when it failed.
  std::vector<std::string> before, after, on_failure;
};

struct Target {
  std::string name;
  std::string dest;  // local directory or [user@]host:DIR
  std::uint64_t block_size = 64 * 1024;
  std::string remote_command;
};

struct Report {
  std::string email;
  bool email_on_success = false;
  std::string sendmail = "sendmail";  // the program speaking `sendmail -t`
  std::string healthcheck_url;
  std::filesystem::path prometheus_textfile;
  // `coffer status`: a source or target whose last success is older is stale (warn: exit 1,
  // crit: exit 2).
  CalendarDuration warn_after{0, 0, 1, 2};  // 1 day 2 hours
  CalendarDuration crit_after{0, 0, 2, 0};  // 2 days
};

struct Config {
  std::filesystem::path path;  // the file it came from
  std::filesystem::path runtime_dir = "/run/coffer";
  Vault vault;
  // A plain directory as B instead of [vault] (an already encrypted disk): no vault to open or
  // close, and nothing to replicate (replication copies the vault image).
  std::filesystem::path repository;
  std::vector<Source> sources;
  Retention retention;
  std::vector<Target> targets;
  Report report;
};

// One problem found in a config file: where, which key, what is wrong.
struct Diagnostic {
  std::uint32_t line = 0;
  std::uint32_t column = 0;
  std::string key;  // dotted, e.g. "source[1].path"
  std::string message;
};

struct ParseResult {
  Config config;
  std::vector<Diagnostic> diagnostics;  // empty: the config is valid
};

// Parses TOML text; never throws for bad content, returns every problem it finds.
ParseResult parse_config(std::string_view text, const std::filesystem::path& shown_path);
// Reads and parses a file; a missing or unreadable file throws Error (kind usage).
ParseResult load_config(const std::filesystem::path& path);
// Like load_config, but any diagnostic becomes an Error (kind usage) naming path:line: key.
Config load_valid_config(const std::filesystem::path& path);

// The config path in force: `-c`, else $COFFER_CONFIG, else /etc/coffer/coffer.toml.
std::filesystem::path default_config_path(const std::optional<std::filesystem::path>& cli);

// The one rule for a replication block size, used by `config check` and by `replicate`.
bool valid_block_size(std::uint64_t size);
inline constexpr const char* kBlockSizeRule = "must be a power of two from 4K to 64M";

std::string format_diagnostic(const std::filesystem::path& path, const Diagnostic& d);

}  // namespace coffer::config
