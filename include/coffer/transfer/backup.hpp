// `coffer backup SOURCE REPO` and `coffer agent`: one protocol (docs/formats/protocol.md) over a
// local pipe or an SSH exec channel, in either direction.
//   SOURCE local, REPO local   B runs `coffer agent` (its own binary) as a child: local pipe
//   SOURCE remote (pull)       B starts `<remote-command> agent` on A over SSH
//   REPO remote (push)         A starts `<remote-command> agent` on B over SSH
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "coffer/util/error.hpp"

namespace coffer::transfer {

struct BackupRequest {
  std::string source;                     // local path or [user@]host:PATH
  std::string repo;                       // local directory or [user@]host:DIR
  std::string name;                       // empty: default_snapshot_name(source)
  std::vector<std::string> filter_rules;  // "- PATTERN" / "+ PATTERN", first match wins
  bool one_file_system = false;
  std::string remote_command = "coffer";  // split like a shell would; "agent" is appended
  // Local SOURCE and REPO: the agent command; empty runs this very binary (/proc/self/exe).
  std::string local_agent_command;
  // Walk and compare only: no snapshot, no in-progress directory, `latest` unchanged.
  bool dry_run = false;
};

struct BackupResult {
  std::string host;      // snapshot name under hosts/
  std::string snapshot;  // timestamp directory
  std::uint64_t entries = 0;
  std::uint64_t linked = 0;
  std::uint64_t resumed = 0;
  std::uint64_t copied = 0;
  std::uint64_t delta_files = 0;
  std::uint64_t data_files = 0;
  std::uint64_t bytes_total = 0;
  std::uint64_t bytes_to_receiver = 0;  // protocol bytes A -> B
  std::uint64_t bytes_to_sender = 0;    // protocol bytes B -> A
  std::uint64_t warnings = 0;
  // A dry run: what a real run would do with the regular files (snapshot stays empty).
  bool dry_run = false;
  std::uint64_t new_files = 0, new_bytes = 0;              // not in the previous snapshot
  std::uint64_t changed_files = 0, changed_bytes = 0;      // other content: deltas or data
  std::uint64_t metadata_files = 0, metadata_bytes = 0;    // same content, other metadata
  std::uint64_t unchanged_files = 0, unchanged_bytes = 0;  // would be hard links
};

using WarningFn = std::function<void(std::string_view path, std::string_view message)>;

// "host" for a remote source (as written, an ssh alias stays an alias), else the basename of
// the source directory (the local host name for "/"), reduced to a valid host directory name.
std::string default_snapshot_name(const std::string& source);

// Reads an --exclude-from file: one rule a line ('- PATTERN', '+ PATTERN' or a bare PATTERN,
// which excludes); blank lines and lines starting with '#' or ';' are ignored. Returns the
// rules as "- PATTERN" / "+ PATTERN", ready for BackupRequest::filter_rules.
std::vector<std::string> read_filter_file(const std::filesystem::path& file);

// Runs a whole backup. Warnings (files that changed or vanished while read, unreadable
// directories) are reported through `on_warning` and counted; errors throw coffer::Error and
// leave the in-progress snapshot for the next run.
BackupResult run_backup(const BackupRequest& request, const WarningFn& on_warning);

struct AgentOptions {
  bool send_only = false;
  bool receive_only = false;
  std::vector<std::filesystem::path> allow;  // empty: any path
};

struct AgentOutcome {
  std::uint64_t warnings = 0;
  // The run failed and the client has the error already (it sent it, or the agent sent it in an
  // ERROR frame): the client prints it, so the agent only exits with this kind's code.
  std::optional<ErrorKind> failed;
  std::string message;
};

// `coffer agent`: speaks the protocol on stdin/stdout; all parameters come from the client's
// HELLO, checked against `options`. Throws only errors the client could not be told about.
AgentOutcome run_agent(int in_fd, int out_fd, const AgentOptions& options,
                       const WarningFn& on_warning);

}  // namespace coffer::transfer
