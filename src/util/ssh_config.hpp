// Reads one keyword of an ssh client config for one host, as ssh_config(5) would: the first
// value obtained wins, `Host` patterns (`*`, `?`, `!negation`) are matched against the host as
// typed, `Include` is followed (relative names from ~/.ssh for the user's file, /etc/ssh for
// the system's). `Match all`, `Match host` and `Match originalhost` are evaluated; a Match with
// any other criterion counts as matching.
//
// libssh keeps what it parsed to itself (ssh_options_get cannot return StrictHostKeyChecking),
// so ssh.cpp uses this to tell a user whose config says `StrictHostKeyChecking no` that coffer
// ignores it. It decides nothing about security: the host key is checked whatever it returns.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace coffer {

struct SshConfigValue {
  std::string value;
  std::filesystem::path file;  // where it was found
};

// `files` in order (user config first); missing or unreadable files are skipped.
std::optional<SshConfigValue> ssh_config_value(const std::vector<std::filesystem::path>& files,
                                               std::string_view host, std::string_view keyword);

// ssh_config(5) pattern lists: comma-separated, `*` and `?` wildcards, a `!` entry that matches
// excludes the host whatever else matches.
bool ssh_host_matches(std::string_view patterns, std::string_view host);

}  // namespace coffer
