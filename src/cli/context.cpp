#include "context.hpp"

#include <fcntl.h>
#include <termios.h>
#include <unistd.h>
#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "coffer/util/error.hpp"
#include "coffer/util/fd.hpp"

namespace coffer::cli {

const config::Config* Context::config() {
  if (!config_loaded_) {
    config_loaded_ = true;
    const char* env = std::getenv("COFFER_CONFIG");
    bool explicit_path = global.config_path || (env && *env);
    std::filesystem::path path = config::default_config_path(global.config_path);
    if (explicit_path || std::filesystem::exists(path)) config_ = config::load_valid_config(path);
  }
  return config_ ? &*config_ : nullptr;
}

const config::Config& Context::require_config() {
  if (const config::Config* c = config()) return *c;
  fail(ErrorKind::usage, "read config", config::default_config_path(global.config_path).native(),
       "no such file (give one with -c or COFFER_CONFIG)");
}

std::filesystem::path Context::runtime_dir() {
  if (global.runtime_dir) return *global.runtime_dir;
  if (const char* env = std::getenv("COFFER_RUNTIME_DIR"); env && *env) return env;
  if (const config::Config* c = config()) return c->runtime_dir;
  return "/run/coffer";
}

void Context::say(const std::string& line) const {
  if (global.json) return;
  std::fputs((line + "\n").c_str(), stdout);
}

void Context::summary(const std::string& line) const {
  if (!global.quiet) say(line);
}

void Context::emit_json(const nlohmann::json& j) const {
  if (!global.json) return;
  std::fputs((j.dump() + "\n").c_str(), stdout);
  std::fflush(stdout);
}

void SecretOptions::add_to(CLI::App& cmd, bool for_new_key) {
  const char* what = for_new_key ? "for the new vault" : "that unlocks the vault";
  cmd.add_option("--key-file", paths.key_file, std::string("Key file ") + what);
  cmd.add_option("--passphrase-file", paths.passphrase_file,
                 std::string("File holding the passphrase ") + what);
  cmd.add_option("--passphrase-command", paths.passphrase_command,
                 "Command that prints the passphrase (run without a shell)");
}

config::Credentials SecretOptions::load(Context& ctx, const std::string& what, bool confirm) const {
  const config::Config* cfg = ctx.config();
  config::SecretPaths resolved =
      config::resolve_secret_paths(paths, cfg ? &cfg->vault.secrets : nullptr);
  config::Credentials creds = config::load_credentials(resolved);
  if (!creds.any() && ::isatty(STDIN_FILENO)) {
    creds.passphrase = prompt_passphrase("Passphrase for " + what + ": ", confirm);
    creds.passphrase_source = "passphrase";
  }
  return creds;
}

namespace {

class EchoOff {
 public:
  explicit EchoOff(int fd) : fd_(fd) {
    if (::tcgetattr(fd_, &saved_) == 0) {
      termios t = saved_;
      t.c_lflag &= ~static_cast<tcflag_t>(ECHO);
      active_ = ::tcsetattr(fd_, TCSAFLUSH, &t) == 0;
    }
  }
  ~EchoOff() {
    if (active_) ::tcsetattr(fd_, TCSAFLUSH, &saved_);
  }

 private:
  int fd_;
  termios saved_{};
  bool active_ = false;
};

Secret read_line(int fd, const std::string& prompt) {
  write_all(fd, prompt, "/dev/tty");
  Secret buf(1024);
  std::size_t n = 0;
  {
    EchoOff off(fd);
    char c;
    while (n < buf.size()) {
      ssize_t r = ::read(fd, &c, 1);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0 || c == '\n') break;
      buf.data()[n++] = static_cast<std::byte>(c);
    }
  }
  write_all(fd, std::string_view("\n"), "/dev/tty");
  buf.truncate(n);
  if (n == 0) fail(ErrorKind::usage, "read passphrase", "terminal", "empty passphrase");
  return buf;
}

}  // namespace

Secret prompt_passphrase(const std::string& prompt, bool confirm) {
  UniqueFd tty;
  try {
    tty = open_fd("/dev/tty", O_RDWR | O_NOCTTY);
  } catch (const Error&) {
    fail(ErrorKind::usage, "read passphrase", "terminal",
         "no terminal; use --key-file, --passphrase-file or --passphrase-command");
  }
  Secret first = read_line(tty.get(), prompt);
  if (confirm) {
    Secret again = read_line(tty.get(), "Repeat passphrase: ");
    if (!secret_equal(first.bytes(), again.bytes()))
      fail(ErrorKind::usage, "read passphrase", "terminal", "the passphrases differ");
  }
  return first;
}

}  // namespace coffer::cli
