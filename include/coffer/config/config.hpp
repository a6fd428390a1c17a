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

struct Source {
  std::string name;
  std::string path;  // local path or [user@]host:PATH
  std::vector<std::string> exclude;
  std::optional<std::filesystem::path> exclude_from;
  bool one_file_system = false;
  std::string remote_command;  // empty: "coffer" from the remote PATH
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

struct Target {
  std::string name;
  std::string dest;  // local directory or [user@]host:DIR
  std::uint64_t block_size = 64 * 1024;
  std::string remote_command;
};

struct Report {
  std::string email;
  std::string healthcheck_url;
  std::filesystem::path prometheus_textfile;
};

struct Config {
  std::filesystem::path path;  // the file it came from
  std::filesystem::path runtime_dir = "/run/coffer";
  Vault vault;
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

std::string format_diagnostic(const std::filesystem::path& path, const Diagnostic& d);

}  // namespace coffer::config
