#include "coffer/util/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "coffer/util/error.hpp"

extern char** environ;

namespace coffer {
namespace {

struct Pipe {
  UniqueFd read, write;
};

Pipe make_pipe(std::string_view program) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw_errno("create pipe for", program, errno);
  return {UniqueFd(fds[0]), UniqueFd(fds[1])};
}

std::vector<std::string> merged_environment(const std::vector<std::string>& overrides) {
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string_view entry(*e);
    auto name = entry.substr(0, entry.find('=') + 1);
    bool replaced = false;
    for (const auto& o : overrides)
      if (o.compare(0, name.size(), name) == 0) replaced = true;
    if (!replaced) env.emplace_back(entry);
  }
  env.insert(env.end(), overrides.begin(), overrides.end());
  return env;
}

class SpawnActions {
 public:
  SpawnActions() { posix_spawn_file_actions_init(&actions_); }
  ~SpawnActions() { posix_spawn_file_actions_destroy(&actions_); }
  posix_spawn_file_actions_t* get() { return &actions_; }

 private:
  posix_spawn_file_actions_t actions_;
};

}  // namespace

Process::Process(std::vector<std::string> argv, const SpawnOptions& options) {
  if (argv.empty()) fail(ErrorKind::usage, "start", "process", "empty command");
  argv0_ = argv[0];
  SpawnActions actions;
  Pipe in, out, err;
  if (options.pipe_stdin) {
    in = make_pipe(argv0_);
    posix_spawn_file_actions_adddup2(actions.get(), in.read.get(), 0);
  } else if (options.null_stdin) {
    posix_spawn_file_actions_addopen(actions.get(), 0, "/dev/null", O_RDONLY, 0);
  }
  if (options.pipe_stdout) {
    out = make_pipe(argv0_);
    posix_spawn_file_actions_adddup2(actions.get(), out.write.get(), 1);
  }
  if (options.pipe_stderr) {
    err = make_pipe(argv0_);
    posix_spawn_file_actions_adddup2(actions.get(), err.write.get(), 2);
  }
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  std::vector<std::string> env_storage = merged_environment(options.env_overrides);
  std::vector<char*> env;
  for (auto& e : env_storage) env.push_back(e.data());
  env.push_back(nullptr);

  int rc = ::posix_spawnp(&pid_, argv0_.c_str(), actions.get(), nullptr, args.data(), env.data());
  if (rc != 0) throw_errno("start program", argv0_, rc);
  in_ = std::move(in.write);
  out_ = std::move(out.read);
  err_ = std::move(err.read);
}

Process::Process(Process&& other) noexcept
    : argv0_(std::move(other.argv0_)),
      pid_(std::exchange(other.pid_, -1)),
      in_(std::move(other.in_)),
      out_(std::move(other.out_)),
      err_(std::move(other.err_)) {}

Process::~Process() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int status;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
}

int Process::wait() {
  if (pid_ <= 0) fail(ErrorKind::failed, "wait for", argv0_, "no child to wait for");
  in_.reset();
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0) {
    if (errno != EINTR) throw_errno("wait for", argv0_, errno);
  }
  pid_ = -1;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 255;
}

void Process::kill(int sig) noexcept {
  if (pid_ > 0) ::kill(pid_, sig);
}

RunResult run_process(const std::vector<std::string>& argv, std::string_view input) {
  SpawnOptions opts;
  opts.pipe_stdin = true;
  opts.pipe_stdout = true;
  opts.pipe_stderr = true;
  Process child(argv, opts);
  RunResult result;
  // Feed stdin and drain both outputs together so a chatty child never blocks on a full pipe.
  std::size_t fed = 0;
  if (input.empty())
    child.stdin_fd().reset();
  else
    ::fcntl(child.stdin_fd().get(), F_SETFL, O_NONBLOCK);
  int open_outputs = 2;
  while (open_outputs > 0 || child.stdin_fd()) {
    pollfd fds[3] = {{child.stdout_fd().get(), POLLIN, 0},
                     {child.stderr_fd().get(), POLLIN, 0},
                     {child.stdin_fd().get(), POLLOUT, 0}};
    if (::poll(fds, 3, -1) < 0) {
      if (errno == EINTR) continue;
      throw_errno("poll", argv[0], errno);
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[8192];
      ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        (i == 0 ? child.stdout_fd() : child.stderr_fd()).reset();
        --open_outputs;
        continue;
      }
      (i == 0 ? result.out : result.err).append(buf, static_cast<std::size_t>(n));
    }
    if (fds[2].fd >= 0 && (fds[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t n = ::write(fds[2].fd, input.data() + fed, input.size() - fed);
      if (n < 0 && errno != EAGAIN && errno != EINTR) {
        child.stdin_fd().reset();  // the child closed its stdin; its exit code tells the rest
      } else if (n > 0) {
        fed += static_cast<std::size_t>(n);
        if (fed == input.size()) child.stdin_fd().reset();
      }
    }
  }
  result.exit_code = child.wait();
  return result;
}

RunResult run_checked(const std::vector<std::string>& argv, std::string_view operation,
                      std::string_view subject, std::string_view input) {
  RunResult r = run_process(argv, input);
  if (r.exit_code != 0) {
    std::string err = r.err;
    while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) err.pop_back();
    auto nl = err.rfind('\n');
    std::string last = nl == std::string::npos ? err : err.substr(nl + 1);
    std::string reason = argv[0] + " exited with status " + std::to_string(r.exit_code);
    if (!last.empty()) reason += " (" + last + ")";
    fail(ErrorKind::failed, operation, subject, reason);
  }
  return r;
}

std::vector<std::string> split_command(std::string_view command) {
  std::vector<std::string> words;
  std::string cur;
  bool in_word = false;
  char quote = 0;
  for (std::size_t i = 0; i < command.size(); ++i) {
    char c = command[i];
    if (quote) {
      if (c == quote) {
        quote = 0;
      } else if (c == '\\' && quote == '"' && i + 1 < command.size()) {
        cur += command[++i];
      } else {
        cur += c;
      }
    } else if (c == '\'' || c == '"') {
      quote = c;
      in_word = true;
    } else if (c == '\\' && i + 1 < command.size()) {
      cur += command[++i];
      in_word = true;
    } else if (c == ' ' || c == '\t' || c == '\n') {
      if (in_word) words.push_back(std::move(cur));
      cur.clear();
      in_word = false;
    } else {
      cur += c;
      in_word = true;
    }
  }
  // Only the program is named: a command line (a --passphrase-command above all) may carry a
  // secret in its arguments, and errors end up in logs and mails.
  if (quote)
    fail(ErrorKind::usage, "parse command", words.empty() ? std::string("") : words.front(),
         "unterminated quote (the command's arguments are not shown: they may hold a secret)");
  if (in_word) words.push_back(std::move(cur));
  return words;
}

std::optional<std::string> find_program(std::string_view name) {
  if (name.find('/') != std::string_view::npos) return std::string(name);
  const char* path = std::getenv("PATH");
  std::string_view dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
  while (!dirs.empty()) {
    auto colon = dirs.find(':');
    std::string dir(dirs.substr(0, colon));
    dirs = colon == std::string_view::npos ? std::string_view{} : dirs.substr(colon + 1);
    std::string candidate = (dir.empty() ? "." : dir) + "/" + std::string(name);
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return std::nullopt;
}

}  // namespace coffer
