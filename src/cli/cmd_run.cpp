// coffer run: the nightly chain from the config. For each source, a snapshot in the vault;
// close the vault; for each target, replicate (and with --verify, verify); one exit code.
#include <algorithm>
#include <chrono>
#include <fmt/format.h>
#include <optional>

#include "coffer/replicate/manifest.hpp"
#include "coffer/util/error.hpp"
#include "coffer/util/lock.hpp"
#include "coffer/util/log.hpp"
#include "coffer/util/signals.hpp"
#include "context.hpp"
#include "exit_codes.hpp"
#include "steps.hpp"

namespace coffer::cli {
namespace {

namespace rep = coffer::replicate;

struct RunArgs {
  SecretOptions secrets;
  bool verify = false;
  std::optional<unsigned> wait_seconds;
  std::vector<std::string> only_sources, only_targets;
};

// The outcome of the whole chain: the first failure decides the exit code, warnings make it 3.
class Outcome {
 public:
  explicit Outcome(Context& ctx) : ctx_(ctx) {}
  void failed(const std::string& step, const Error& e) {
    log::warn("{} failed: {}", step, e.what());
    ctx_.emit_json({{"type", "step_failed"}, {"step", step}, {"kind", kind_name(e.kind())},
                    {"message", e.what()}});
    if (!first_) first_ = exit_code_for(e.kind());
    ++failures_;
    if (e.kind() == ErrorKind::interrupted) throw;  // stop the chain; guards clean up
  }
  void warned() { warnings_ = true; }
  int failures() const { return failures_; }
  int exit_code() const { return first_ ? *first_ : warnings_ ? int{kWarnings} : int{kOk}; }

 private:
  Context& ctx_;
  std::optional<int> first_;
  int failures_ = 0;
  bool warnings_ = false;
};

// Closes the vault on every path out of the backup phase; an explicit close() reports errors.
class OpenVault {
 public:
  OpenVault(const vault::Location& where, const config::Credentials& creds,
            const std::optional<std::filesystem::path>& mount)
      : where_(where), mount_(vault::open(where, creds, mount)) {}
  ~OpenVault() {
    if (!open_) return;
    try {
      vault::close(where_);
    } catch (const Error& e) {
      log::warn("{}", e.what());
    }
  }
  const std::filesystem::path& mount() const { return mount_; }
  void close() {
    open_ = false;
    vault::close(where_);
  }

 private:
  vault::Location where_;
  std::filesystem::path mount_;
  bool open_ = true;
};

bool selected(const std::vector<std::string>& only, const std::string& name) {
  return only.empty() || std::find(only.begin(), only.end(), name) != only.end();
}

void backup_phase(Context& ctx, const config::Config& cfg, const RunArgs& args,
                  const vault::Location& where, const config::Credentials& creds, Outcome& out) {
  std::optional<std::filesystem::path> mount;
  if (!cfg.vault.mount.empty()) mount = cfg.vault.mount;
  OpenVault open(where, creds, mount);
  log::info("vault {} open at {}", where.image.native(), open.mount().native());
  for (const auto& source : cfg.sources) {
    if (!selected(args.only_sources, source.name)) continue;
    check_interrupted("run");
    try {
      transfer::BackupResult r = run_reported_backup(ctx, backup_request(source, open.mount()));
      if (r.warnings) out.warned();
    } catch (const Error& e) {
      out.failed("backup of source " + source.name, e);
      continue;  // no rotation after a failed backup: the snapshots stay as they were
    }
    try {
      run_reported_forget(ctx, open.mount(), source.name, policy_from_config(cfg.retention), false);
    } catch (const Error& e) {
      out.failed("retention of source " + source.name, e);
    }
  }
  open.close();
}

void replicate_phase(Context& ctx, const config::Config& cfg, const RunArgs& args,
                     const vault::Location& where, const config::Credentials& creds,
                     Outcome& out) {
  // The vault lock keeps `vault open` away while the image is read.
  FileLock lock(where.lock_path());
  rep::VaultFacts facts = vault_facts(where);
  rep::refuse_open_vault(facts);
  Secret key = vault::volume_key(where, creds);
  for (const auto& target : cfg.targets) {
    if (!selected(args.only_targets, target.name)) continue;
    check_interrupted("run");
    try {
      rep::ReplicateOptions o;
      o.vault = facts;
      o.target = rep::resolve_target(target.name, cfg.targets, std::nullopt);
      o.volume_key = &key;
      run_reported_replication(ctx, where, o);
      if (args.verify) report_verify(ctx, rep::verify(facts, o.target, &key));
    } catch (const Error& e) {
      out.failed("replication to target " + target.name, e);
    }
  }
}

int run_chain(Context& ctx, const RunArgs& args) {
  const config::Config& cfg = ctx.require_config();
  if (cfg.vault.image.empty())
    fail(ErrorKind::usage, "run", cfg.path.native(), "the config names no [vault] image");
  vault::Location where{cfg.vault.image, ctx.runtime_dir()};
  std::filesystem::create_directories(where.runtime_dir);
  // One chain at a time per vault; the per-command vault lock is taken and released inside.
  std::optional<std::chrono::milliseconds> wait;
  if (args.wait_seconds) wait = std::chrono::seconds(*args.wait_seconds);
  FileLock run_lock(where.runtime_dir / (where.mapping_name() + ".run.lock"), wait);

  if (ctx.global.dry_run) {
    ctx.say(fmt::format("would open vault {}", where.image.native()));
    for (const auto& s : cfg.sources)
      if (selected(args.only_sources, s.name)) {
        ctx.say(fmt::format("would back up {} as hosts/{}", s.path, s.name));
        snapshot::RetentionPolicy policy = policy_from_config(cfg.retention);
        ctx.say(policy.empty()
                    ? fmt::format("would refuse to apply [retention] to hosts/{}: it keeps nothing",
                                  s.name)
                    : fmt::format("would apply [retention] to hosts/{}: keep {}", s.name,
                                  policy.describe()));
        ctx.emit_json({{"type", "dry_run_retention"},
                       {"host", s.name},
                       {"policy", policy.describe()},
                       {"empty", policy.empty()}});
      }
    for (const auto& t : cfg.targets)
      if (selected(args.only_targets, t.name))
        ctx.say(fmt::format("would replicate to {} ({})", t.name, t.dest));
    return kOk;
  }

  config::Credentials creds = args.secrets.load(ctx, where.image.native());
  Outcome out(ctx);
  backup_phase(ctx, cfg, args, where, creds, out);
  replicate_phase(ctx, cfg, args, where, creds, out);
  ctx.say(fmt::format("run finished: {}", out.failures() ? fmt::format("{} step(s) failed", out.failures())
                                                         : std::string("every step succeeded")));
  ctx.emit_json({{"type", "run_finished"}, {"failures", out.failures()}, {"exit_code", out.exit_code()}});
  return out.exit_code();
}

}  // namespace

void register_run_command(CLI::App& app, Context& ctx) {
  auto args = std::make_shared<RunArgs>();
  auto* cmd = app.add_subcommand(
      "run", "The nightly chain from the config: back up every source into the vault, close it, "
             "replicate to every target");
  args->secrets.add_to(*cmd);
  cmd->add_flag("--verify", args->verify, "After replicating, have each C verify its copy");
  cmd->add_option("--wait", args->wait_seconds,
                  "Wait up to SECONDS for a running chain instead of exiting 11");
  cmd->add_option("--source", args->only_sources, "Only these [[source]] names");
  cmd->add_option("--target", args->only_targets, "Only these [[target]] names");
  cmd->callback([&ctx, args] { ctx.action = [&ctx, args] { return run_chain(ctx, *args); }; });
}

}  // namespace coffer::cli
