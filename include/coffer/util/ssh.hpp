// Commands on other hosts over SSH (libssh): `coffer agent` on a source A, `coffer replica-serve`
// on a replica C. The connection honours ~/.ssh/config, checks the host key against known_hosts
// (an unknown or changed key is an error, never accepted), authenticates with ssh-agent and
// identity files, and runs one command whose stdin/stdout become a ByteStream. See docs/ssh.md.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "coffer/util/remote.hpp"
#include "coffer/util/stream.hpp"

namespace coffer {

struct SshOptions {
  // Instead of $HOME/.ssh/config (+ /etc/ssh/ssh_config).
  std::optional<std::filesystem::path> config_file = {};
  // Tried before the agent and the config's identity files; must not need a passphrase.
  std::optional<std::filesystem::path> identity = {};
  // Wins over the config's Port.
  std::optional<int> port = {};
};

// The stdin/stdout of one remote command. Safe for one thread reading while another writes
// (pipelined protocols); any other sharing needs the caller's own lock.
class SshChannelStream final : public ByteStream {
 public:
  struct Impl;
  explicit SshChannelStream(std::unique_ptr<Impl> impl);
  // Closes the channel and the connection; a command still running sees EOF and a hang-up.
  ~SshChannelStream() override;

  std::size_t read_some(std::span<std::byte> buf) override;
  void write_all(std::span<const std::byte> data) override;
  void close_write() override;
  // "user@host", the host as the caller named it (a config alias stays an alias).
  const std::string& peer() const override;

  // "host:port" actually connected to (after ~/.ssh/config), for messages.
  const std::string& endpoint() const;
  // Waits for the remote command to end and returns its exit status, or -1 when it had none
  // (killed by a signal, or the connection dropped). Output not read yet is discarded.
  int exit_status();
  // The last 4 KiB the remote command wrote to stderr, and its last non-empty line: callers put
  // the line into their errors ("coffer agent on a: cannot open /src: Permission denied").
  std::string stderr_tail() const;
  std::string last_stderr_line() const;
  // Channel payload bytes so far, for benchmark and progress reports.
  std::uint64_t bytes_sent() const;
  std::uint64_t bytes_received() const;

 private:
  std::unique_ptr<Impl> impl_;
};

// Connects to `target` (user and host; the path is not used), verifies and authenticates, and
// starts `remote_argv` (shell-quoted) in an exec channel. Errors name "host:port" and libssh's
// reason; a refused host key names the known_hosts file to fix.
std::unique_ptr<SshChannelStream> ssh_exec(const RemoteSpec& target,
                                           const std::vector<std::string>& remote_argv,
                                           const SshOptions& opts = {});

}  // namespace coffer
