// A real OpenSSH server on a loopback port, for tests that run coffer over SSH.
//
// The fixture generates its own host key and user key, writes an sshd_config and a client HOME
// whose .ssh/config maps the alias "coffer-test" to 127.0.0.1:<port> with the right User,
// IdentityFile and UserKnownHostsFile. A test runs coffer with env() (HOME=<that home>,
// SSH_AUTH_SOCK emptied) and addresses "coffer-test:/some/path". One sshd serves a whole test
// binary (SshdEnvironment), so handshakes, not server starts, are the cost per test.
#pragma once

#include <gtest/gtest.h>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "coffer/util/process.hpp"
#include "temp_dir.hpp"

namespace coffer::test {

class Sshd {
 public:
  // Starts sshd and waits until its port accepts connections; throws with sshd's log if not.
  Sshd();
  // Drops the connections and stops the server.
  ~Sshd();
  Sshd(const Sshd&) = delete;
  Sshd& operator=(const Sshd&) = delete;

  int port() const { return port_; }
  const std::filesystem::path& home() const { return home_; }  // client HOME
  const std::string& alias() const { return alias_; }          // "coffer-test"
  const std::string& user() const { return user_; }            // the local user (root)
  std::filesystem::path known_hosts() const { return home_ / ".ssh/known_hosts"; }
  std::filesystem::path ssh_config() const { return home_ / ".ssh/config"; }
  std::filesystem::path identity() const { return home_ / ".ssh/coffer_test_key"; }
  std::filesystem::path host_public_key() const { return dir_ / "sshd/host_key.pub"; }
  const std::filesystem::path& log_file() const { return log_; }
  // "[127.0.0.1]:<port> ssh-ed25519 AAAA..." — the line known_hosts needs for this server.
  std::string known_hosts_line() const;
  // Environment for a coffer child process: HOME=<home>, SSH_AUTH_SOCK= (no agent).
  std::vector<std::string> env() const;

  // Authorizes a new key that may only run `command` (authorized_keys command="..."; the client's
  // own command arrives in $SSH_ORIGINAL_COMMAND) and adds a Host alias using it to the client
  // config. Returns the alias ("coffer-test-forced-1", ...).
  std::string add_forced_command(const std::string& command);
  // Generates an unauthorized key pair (for "wrong identity" tests); returns the private key path.
  std::filesystem::path make_unauthorized_key(const std::string& name);

  // Kills every per-connection sshd process (the links drop mid-stream, as in a network failure)
  // but not the listener, which keeps accepting. Returns how many processes were killed.
  int kill_connections();

 private:
  bool try_start();
  std::filesystem::path new_key(const std::string& name) const;

  TempDir tmp_;
  std::filesystem::path dir_, home_, log_;
  std::string alias_ = "coffer-test";
  std::string user_;
  int port_ = 0;
  int forced_count_ = 0;
  std::unique_ptr<Process> server_;
};

// One Sshd per test binary. Register it at namespace scope in one test file:
//   static auto* const sshd_env =
//       ::testing::AddGlobalTestEnvironment(new coffer::test::SshdEnvironment);
// SetUp also sets HOME to the fixture's home and unsets SSH_AUTH_SOCK in the test process, for
// tests that call the SSH library directly. Tests are skipped when /usr/sbin/sshd is missing.
class SshdEnvironment : public ::testing::Environment {
 public:
  void SetUp() override;
  void TearDown() override;
  static Sshd& sshd();
};

}  // namespace coffer::test
