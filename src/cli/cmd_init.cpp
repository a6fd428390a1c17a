// coffer init: a commented coffer.toml to start from (never over an existing one), and asked to,
// the vault and its key file; then the next three commands (docs/man/coffer-init.md).
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>
#include <cerrno>

#include "coffer/util/error.hpp"
#include "coffer/util/fd.hpp"
#include "context.hpp"
#include "exit_codes.hpp"
#include "steps.hpp"

namespace coffer::cli {
namespace {

struct InitArgs {
  std::filesystem::path vault;
  std::string size;
  std::filesystem::path generate;
  SecretOptions secrets;
  KdfOptions kdf;
};

std::string quoted(const std::filesystem::path& p) {
  nlohmann::json j = p.native();  // a TOML basic string escapes as JSON does
  return j.dump();
}

std::string config_text(const std::filesystem::path& image, const std::filesystem::path& key,
                        const std::string& host) {
  std::string key_line = key.empty()
                             ? "# key_file = \"/etc/coffer/vault.key\"  # unattended runs need one"
                             : "key_file = " + quoted(std::filesystem::absolute(key));
  return fmt::format(
      R"(# coffer.toml, written by `coffer init`. Every key: docs/config.md; check it with
# `coffer config check`. The systemd timer runs `coffer run` every night.

# Locks, open-state files and the default mount point (a tmpfs).
runtime_dir = "/run/coffer"

# B: the encrypted vault image the snapshots live in.
[vault]
image = {}
{}
# passphrase_file = "/etc/coffer/passphrase"

# A: what to back up. One [[source]] per machine or directory; a path is local or
# [user@]host:PATH over SSH (coffer must be installed there too).
# [[source]]
# name = "{}"
# path = "/"
# exclude = ["/proc", "/sys", "/dev", "/run", "/tmp", "/var/cache"]
# one_file_system = false
# before = ["/usr/local/sbin/dump-databases"]   # argv, no shell; a failure skips the source
# keep = {{ last = 3, daily = 14 }}               # this source's own retention

# How many snapshots `coffer run` keeps after each backup (restic's rules, docs/snapshots.md).
[retention]
last = 1
daily = 7
weekly = 4
monthly = 12
yearly = 2

# C: off-site copies of the closed vault image. The host needs coffer, not the key.
# [[target]]
# name = "offsite"
# dest = "backup@offsite.example.org:/srv/coffer-replica"

# Reports after every run (docs/report.md).
# [report]
# email = "root@localhost"                  # mailed through sendmail -t on failure
# healthcheck_url = "https://hc-ping.com/UUID"
# prometheus_textfile = "/var/lib/prometheus/node-exporter/coffer.prom"
# warn_after = "1d2h"                       # coffer status: stale after this
# crit_after = "2d"
)",
      quoted(image), key_line, host);
}

// O_EXCL: an existing config is never replaced, not even by a race with another init.
void write_new_file(const std::filesystem::path& path, const std::string& text) {
  if (!path.parent_path().empty()) std::filesystem::create_directories(path.parent_path());
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640));
  if (!fd)
    throw_errno("write config", path, errno,
                errno == EEXIST ? ErrorKind::usage : ErrorKind::failed);
  try {
    write_all(fd.get(), text, path);
    fsync_fd(fd.get(), path);
  } catch (...) {
    std::filesystem::remove(path);
    throw;
  }
  fsync_dir(path.parent_path().empty() ? std::filesystem::path(".") : path.parent_path());
}

int init(Context& ctx, const InitArgs& a) {
  std::filesystem::path path = config::default_config_path(ctx.global.config_path);
  if (std::filesystem::exists(path))
    fail(ErrorKind::usage, "write config", path.native(), "file exists; refusing to overwrite it");
  if (!a.generate.empty() && a.vault.empty())
    fail(ErrorKind::usage, "init", "--generate-key-file", "needs --vault IMAGE (the key opens it)");
  if (!a.vault.empty() && a.size.empty())
    fail(ErrorKind::usage, "init", a.vault.native(), "--vault needs --size (e.g. 500G)");
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  std::filesystem::path image =
      a.vault.empty() ? "/srv/coffer/vault.img" : std::filesystem::absolute(a.vault);
  if (!a.vault.empty()) {
    int rc = create_vault(ctx, {image, ctx.runtime_dir()}, a.size, a.secrets, a.kdf.params(),
                          a.generate);
    if (rc != kOk) return rc;
  }
  write_new_file(path, config_text(image, a.generate, host));
  ctx.emit_json(
      {{"type", "init"},
       {"config", path.native()},
       {"image", image.native()},
       {"vault_created", !a.vault.empty()},
       {"key_file", a.generate.empty() ? "" : std::filesystem::absolute(a.generate).native()}});
  std::string c = path == "/etc/coffer/coffer.toml" ? "" : " -c " + path.native();
  ctx.say(fmt::format("wrote {}", path.native()));
  ctx.say("next:");
  ctx.say(fmt::format("  1. edit the [[source]] (and [[target]]) entries in {}", path.native()));
  ctx.say(fmt::format("  2. coffer{} config check", c));
  ctx.say("  3. systemctl enable --now coffer.timer     (contrib/systemd/)");
  ctx.say("Store a recovery passphrase for the vault off-site (a password manager, a sealed");
  ctx.say(fmt::format("envelope): `coffer vault add-key {}` adds one. Without it or the key file,",
                      image.native()));
  ctx.say("neither B nor the replicas on C can be opened.");
  return kOk;
}

}  // namespace

void register_init_command(CLI::App& app, Context& ctx) {
  auto args = std::make_shared<InitArgs>();
  auto* cmd = app.add_subcommand(
      "init",
      "Write a commented config (never over an existing one) and, asked to, create the "
      "vault and a key file (docs/man/coffer-init.md)");
  cmd->add_option("--vault", args->vault, "Also create this vault image");
  cmd->add_option("--size", args->size, "The new vault's size, e.g. 500G (sparse)");
  cmd->add_option("--generate-key-file", args->generate,
                  "Write a new random key file (mode 0400) for the new vault");
  args->secrets.add_to(*cmd, true);
  args->kdf.add_to(*cmd);
  cmd->callback([&ctx, args] { ctx.action = [&ctx, args] { return init(ctx, *args); }; });
}

}  // namespace coffer::cli
