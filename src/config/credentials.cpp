#include "coffer/config/credentials.hpp"

#include <cstdlib>
#include <filesystem>

#include "coffer/util/error.hpp"
#include "coffer/util/process.hpp"

namespace coffer::config {
namespace {

template <typename T>
void take(std::optional<T>& dst, const std::optional<T>& src) {
  if (!dst && src) dst = src;
}

std::optional<std::string> env(const char* name) {
  const char* v = std::getenv(name);
  if (v && *v) return std::string(v);
  return std::nullopt;
}

std::optional<std::filesystem::path> env_path(const char* name) {
  if (auto v = env(name)) return std::filesystem::path(*v);
  return std::nullopt;
}

std::optional<std::filesystem::path> credential(const char* name) {
  auto dir = env("CREDENTIALS_DIRECTORY");
  if (!dir) return std::nullopt;
  std::filesystem::path p = std::filesystem::path(*dir) / name;
  std::error_code ec;
  if (std::filesystem::exists(p, ec)) return p;
  return std::nullopt;
}

Secret run_passphrase_command(const std::string& command) {
  std::vector<std::string> argv = split_command(command);
  if (argv.empty()) fail(ErrorKind::usage, "run passphrase command", "", "the command is empty");
  SpawnOptions opts;
  opts.pipe_stdout = true;
  opts.null_stdin = true;
  Process child(argv, opts);
  Secret s = read_secret_fd(child.stdout_fd().get(), "passphrase command " + argv[0], true);
  child.stdout_fd().reset();
  int rc = child.wait();
  if (rc != 0)
    fail(ErrorKind::failed, "run passphrase command", argv[0],
         "exited with status " + std::to_string(rc));
  return s;
}

}  // namespace

SecretPaths resolve_secret_paths(const SecretPaths& cli, const SecretPaths* from_config) {
  SecretPaths r = cli;
  SecretPaths from_env{env_path("COFFER_KEY_FILE"), env_path("COFFER_PASSPHRASE_FILE"),
                       env("COFFER_PASSPHRASE_COMMAND")};
  // The passphrase file and command are alternatives: the first level that names either wins.
  bool have_pass = r.passphrase_file || r.passphrase_command;
  take(r.key_file, from_env.key_file);
  if (!have_pass) {
    r.passphrase_file = from_env.passphrase_file;
    r.passphrase_command = from_env.passphrase_command;
    have_pass = r.passphrase_file || r.passphrase_command;
  }
  if (from_config) {
    take(r.key_file, from_config->key_file);
    if (!have_pass) {
      r.passphrase_file = from_config->passphrase_file;
      r.passphrase_command = from_config->passphrase_command;
      have_pass = r.passphrase_file || r.passphrase_command;
    }
  }
  take(r.key_file, credential("coffer.key"));
  if (!have_pass) r.passphrase_file = credential("coffer.passphrase");
  return r;
}

Credentials load_credentials(const SecretPaths& paths) {
  Credentials c;
  if (paths.key_file) {
    // Key files are binary: every byte counts, nothing is stripped.
    c.key = read_secret_file(*paths.key_file, false, 8 * 1024 * 1024);
    c.key_source = "key file " + paths.key_file->native();
  }
  if (paths.passphrase_file) {
    c.passphrase = read_secret_file(*paths.passphrase_file, true);
    c.passphrase_source = "passphrase file " + paths.passphrase_file->native();
  } else if (paths.passphrase_command) {
    c.passphrase = run_passphrase_command(*paths.passphrase_command);
    c.passphrase_source = "passphrase command";
  }
  return c;
}

}  // namespace coffer::config
