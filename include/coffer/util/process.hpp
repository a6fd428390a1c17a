// Child processes started without a shell: argv is passed as it is, so no file name or
// argument is ever interpreted by /bin/sh.
#pragma once

#include <sys/types.h>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "coffer/util/fd.hpp"

namespace coffer {

struct SpawnOptions {
  bool pipe_stdin = false;                 // parent writes to stdin_fd()
  bool pipe_stdout = false;                // parent reads stdout_fd()
  bool pipe_stderr = false;                // parent reads stderr_fd()
  bool null_stdin = false;                 // child reads /dev/null (when not piped)
  std::vector<std::string> env_overrides;  // "NAME=value" added to or replacing the environment
};

class Process {
 public:
  Process(std::vector<std::string> argv, const SpawnOptions& options = {});
  // The moved-from object owns no child: its destructor kills nothing and its wait() throws
  // (a defaulted move copied the pid, so both objects killed and reaped the same child).
  Process(Process&& other) noexcept;
  Process& operator=(Process&&) = delete;
  // A child still running is killed (SIGKILL) and reaped, so no zombie or orphan outlives us.
  ~Process();

  pid_t pid() const noexcept { return pid_; }
  UniqueFd& stdin_fd() noexcept { return in_; }
  UniqueFd& stdout_fd() noexcept { return out_; }
  UniqueFd& stderr_fd() noexcept { return err_; }
  const std::string& program() const noexcept { return argv0_; }

  // Waits for the child; returns its exit code, or 128+signal if it was killed. Throws when
  // there is no child (already waited for, or moved from): waitpid(-1) would reap any child.
  int wait();
  void kill(int sig) noexcept;

 private:
  std::string argv0_;
  pid_t pid_ = -1;
  UniqueFd in_, out_, err_;
};

struct RunResult {
  int exit_code = 0;
  std::string out;
  std::string err;
};

// Runs argv to completion, feeding `input` to stdin and collecting stdout and stderr.
RunResult run_process(const std::vector<std::string>& argv, std::string_view input = {});
// Like run_process, but a non-zero exit becomes an Error naming `operation`, `subject`, the
// program and the last line of its stderr.
RunResult run_checked(const std::vector<std::string>& argv, std::string_view operation,
                      std::string_view subject, std::string_view input = {});

// Splits a command line the way a shell would split words (quotes and backslashes), without
// expanding anything: used for --passphrase-command and --remote-command. Its errors, like
// Process's, name the program only, never the arguments.
std::vector<std::string> split_command(std::string_view command);

// Finds a program in PATH (or returns the name unchanged if it contains '/').
std::optional<std::string> find_program(std::string_view name);

}  // namespace coffer
