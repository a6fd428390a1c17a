#include "transport.hpp"

#include <unistd.h>
#include <climits>

#include "coffer/util/error.hpp"
#include "coffer/util/log.hpp"
#include "coffer/util/process.hpp"
#include "coffer/util/ssh.hpp"

namespace coffer::replicate {
namespace {

std::string self_executable() {
  char buf[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "coffer";
  return std::string(buf, static_cast<std::size_t>(n));
}

class LocalLink final : public HelperLink {
 public:
  LocalLink(std::vector<std::string> argv, const std::filesystem::path& dir)
      : proc_(std::move(argv), options()),
        io_(std::move(proc_.stdout_fd()), std::move(proc_.stdin_fd()), dir.native()) {}
  ~LocalLink() override {
    // Let a helper that already committed finish applying rather than kill it.
    try {
      finish();
    } catch (...) {
    }
  }
  ByteStream& stream() override { return io_; }
  void finish() override {
    if (done_) return;
    done_ = true;
    io_.close_write();
    code_ = proc_.wait();
    if (code_ != 0) log::debug("replica helper for {} exited with status {}", io_.peer(), code_);
  }
  std::string diagnose() override {
    finish();
    return code_ ? "the helper exited with status " + std::to_string(code_) : std::string();
  }

 private:
  static SpawnOptions options() {
    SpawnOptions o;
    o.pipe_stdin = true;
    o.pipe_stdout = true;
    return o;
  }
  Process proc_;
  FdStream io_;
  bool done_ = false;
  int code_ = 0;
};

class SshLink final : public HelperLink {
 public:
  explicit SshLink(std::unique_ptr<SshChannelStream> s) : s_(std::move(s)) {}
  ByteStream& stream() override { return *s_; }
  void finish() override { s_->close_write(); }
  std::string diagnose() override {
    int code = s_->exit_status();
    std::string line = s_->last_stderr_line();
    std::string what = code >= 0 ? "the remote command exited with status " + std::to_string(code)
                                 : std::string("the remote command ended without a status");
    return line.empty() ? what : what + ": " + line;
  }

 private:
  std::unique_ptr<SshChannelStream> s_;
};

}  // namespace

Destination parse_destination(std::string_view text) {
  Destination d;
  d.text = std::string(text);
  d.remote = parse_remote(text);
  if (d.remote) {
    if (d.remote->path.empty())
      fail(ErrorKind::usage, "parse destination", text, "name a directory after the ':'");
    d.dir = d.remote->path;
  } else {
    if (text.empty()) fail(ErrorKind::usage, "parse destination", text, "empty destination");
    d.dir = std::filesystem::absolute(std::filesystem::path(text)).lexically_normal();
    if (d.dir.has_parent_path() && d.dir.filename().empty()) d.dir = d.dir.parent_path();
  }
  return d;
}

std::unique_ptr<HelperLink> start_helper(const TargetSpec& target) {
  Destination d = parse_destination(target.dest);
  std::vector<std::string> argv;
  if (!target.remote_command.empty()) argv = split_command(target.remote_command);
  if (d.remote) {
    if (argv.empty()) argv = {"coffer"};
    argv.insert(argv.end(), {"replica-serve", d.dir.native()});
    log::debug("starting {} on {}", shell_quote(argv), format_remote(*d.remote));
    return std::make_unique<SshLink>(ssh_exec(*d.remote, argv, target.ssh));
  }
  if (argv.empty()) argv = {self_executable()};
  argv.insert(argv.end(), {"replica-serve", d.dir.native()});
  return std::make_unique<LocalLink>(std::move(argv), d.dir);
}

}  // namespace coffer::replicate
