// coffer run: the nightly chain from the config. For each source, a snapshot in the vault;
// close the vault; for each target, replicate (and with --verify, verify); one exit code.
#include <fmt/format.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <algorithm>
#include <chrono>
#include <optional>

#include "coffer/replicate/manifest.hpp"
#include "coffer/util/error.hpp"
#include "coffer/util/lock.hpp"
#include "coffer/util/log.hpp"
#include "coffer/util/signals.hpp"
#include "context.hpp"
#include "exit_codes.hpp"
#include "run_support.hpp"
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

// Backs every selected source up into `repo`; true if at least one snapshot was made.
bool back_up_sources(Context& ctx, const config::Config& cfg, const RunArgs& args,
                     const std::filesystem::path& repo, Outcome& out) {
  bool any = false;
  for (const auto& source : cfg.sources) {
    if (!selected(args.only_sources, source.name)) continue;
    report::SourceRun r = run_source(ctx, cfg, source, repo, out);
    any = any || !r.snapshot.empty();
    out.summary.sources.push_back(std::move(r));
  }
  return any;
}

// Opens the vault, backs up, closes it. False if the vault could not be opened or closed (an
// open vault must not be replicated).
bool backup_phase(Context& ctx, const config::Config& cfg, const RunArgs& args,
                  const vault::Location& where, const config::Credentials& creds, Outcome& out) {
  std::optional<std::filesystem::path> mount;
  if (!cfg.vault.mount.empty()) mount = cfg.vault.mount;
  try {
    OpenVault open(where, creds, mount);
    log::info("vault {} open at {}", where.image.native(), open.mount().native());
    back_up_sources(ctx, cfg, args, open.mount(), out);
    open.close();
  } catch (const Error& e) {
    out.failed("vault " + where.image.native(), e);
    return false;
  }
  return true;
}

void replicate_phase(Context& ctx, const config::Config& cfg, const RunArgs& args,
                     const vault::Location& where, const config::Credentials& creds, Outcome& out) {
  // The vault lock keeps `vault open` away while the image is read.
  FileLock lock(where.lock_path());
  rep::VaultFacts facts = vault_facts(where);
  rep::refuse_open_vault(facts);
  Secret key = vault::volume_key(where, creds);
  for (const auto& target : cfg.targets) {
    if (!selected(args.only_targets, target.name)) continue;
    check_interrupted("run");
    report::TargetRun rec;
    rec.name = target.name;
    rec.dest = target.dest;
    ctx.emit_json({{"type", "step_start"}, {"step", "replicate"}, {"target", target.name}});
    try {
      rep::ReplicateOptions o;
      o.vault = facts;
      o.target = rep::resolve_target(target.name, cfg.targets, std::nullopt);
      o.volume_key = &key;
      rep::ReplicateResult r = run_reported_replication(ctx, where, o);
      rec.generation = r.generation;
      rec.bytes_sent = r.bytes_sent;
      if (args.verify) {
        ctx.emit_json({{"type", "step_start"}, {"step", "verify"}, {"target", target.name}});
        report_verify(ctx, rep::verify(facts, o.target, &key));
      }
    } catch (const Error& e) {
      rec.result = report::Result::failed;
      rec.error = fmt::format("replication to target {} failed: {}", target.name, e.what());
      out.failed("replication to target " + target.name, e);
    }
    ctx.emit_json({{"type", "target_result"},
                   {"target", target.name},
                   {"dest", target.dest},
                   {"result", report::result_name(rec.result)},
                   {"generation", rec.generation},
                   {"bytes_sent", rec.bytes_sent},
                   {"error", rec.error}});
    out.summary.targets.push_back(std::move(rec));
  }
}

// A --source or --target name the config does not have is a typo, not "nothing selected".
template <typename Items>
void check_selection(const config::Config& cfg, const std::vector<std::string>& only,
                     const Items& items, const char* what) {
  for (const auto& name : only)
    if (std::none_of(items.begin(), items.end(), [&](const auto& i) { return i.name == name; }))
      fail(ErrorKind::usage, "run", cfg.path.native(),
           fmt::format("no [[{}]] named '{}'", what, name));
}

// One chain at a time per B: the vault's mapping name, or a plain repository's device and inode.
std::filesystem::path run_lock_path(const config::Config& cfg,
                                    const std::filesystem::path& runtime) {
  if (cfg.repository.empty())
    return runtime / (vault::Location{cfg.vault.image, runtime}.mapping_name() + ".run.lock");
  struct stat st {};
  if (::stat(cfg.repository.c_str(), &st) != 0)
    throw_errno("open repository", cfg.repository, errno,
                errno == ENOENT ? ErrorKind::missing : ErrorKind::failed);
  return runtime / fmt::format("coffer-repo-{}_{}-{}.run.lock", major(st.st_dev), minor(st.st_dev),
                               st.st_ino);
}

void dry_run(Context& ctx, const config::Config& cfg, const RunArgs& args) {
  if (cfg.repository.empty()) ctx.say(fmt::format("would open vault {}", cfg.vault.image.native()));
  for (const auto& s : cfg.sources) {
    if (!selected(args.only_sources, s.name)) continue;
    ctx.say(fmt::format("would back up {} as hosts/{}", s.path, s.name));
    const char* which = s.keep ? "its keep table" : "[retention]";
    snapshot::RetentionPolicy policy = policy_from_config(s.keep ? *s.keep : cfg.retention);
    ctx.say(
        policy.empty()
            ? fmt::format("would refuse to apply {} to hosts/{}: it keeps nothing", which, s.name)
            : fmt::format("would apply {} to hosts/{}: keep {}", which, s.name, policy.describe()));
    ctx.emit_json({{"type", "dry_run_retention"},
                   {"host", s.name},
                   {"policy", policy.describe()},
                   {"empty", policy.empty()}});
  }
  for (const auto& t : cfg.targets)
    if (selected(args.only_targets, t.name))
      ctx.say(fmt::format("would replicate to {} ({})", t.name, t.dest));
}

int run_chain(Context& ctx, const RunArgs& args) {
  const config::Config& cfg = ctx.require_config();
  if (cfg.vault.image.empty() && cfg.repository.empty())
    fail(ErrorKind::usage, "run", cfg.path.native(), "the config names no [vault] or [repository]");
  check_selection(cfg, args.only_sources, cfg.sources, "source");
  check_selection(cfg, args.only_targets, cfg.targets, "target");
  std::filesystem::path runtime = ctx.runtime_dir();
  std::filesystem::create_directories(runtime);
  std::optional<std::chrono::milliseconds> wait;
  if (args.wait_seconds) wait = std::chrono::seconds(*args.wait_seconds);
  FileLock run_lock(run_lock_path(cfg, runtime), wait);
  if (ctx.global.dry_run) {
    dry_run(ctx, cfg, args);
    return kOk;
  }

  LogTail tail(ctx.global);
  Outcome out(ctx);
  auto started = std::chrono::steady_clock::now();
  out.summary.started = std::chrono::duration_cast<std::chrono::seconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  out.summary.hostname = host;
  ctx.emit_json(
      {{"type", "run_start"}, {"host", out.summary.hostname}, {"time", out.summary.started}});
  report_start(cfg);
  try {
    if (!cfg.repository.empty()) {
      back_up_sources(ctx, cfg, args, cfg.repository, out);
    } else {
      vault::Location where{cfg.vault.image, runtime};
      try {
        config::Credentials creds = args.secrets.load(ctx, where.image.native());
        if (backup_phase(ctx, cfg, args, where, creds, out))
          replicate_phase(ctx, cfg, args, where, creds, out);
      } catch (const Error& e) {
        out.failed("vault " + where.image.native(), e);
      }
    }
  } catch (const Error& e) {
    // An interruption: report what was done, then let app.cpp print it and exit 130.
    out.summary.exit_code = worse_exit_code(out.exit_code(), exit_code_for(e.kind()));
    out.summary.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    out.summary.log_tail = tail.lines();
    report_finish(ctx, cfg, out.summary);
    throw;
  }
  out.summary.exit_code = out.exit_code();
  out.summary.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  ctx.summary(fmt::format("run finished in {:.1f} s: {}, exit code {}", out.summary.seconds,
                          out.failures() ? fmt::format("{} step(s) failed", out.failures())
                                         : std::string("every step succeeded"),
                          out.exit_code()));
  out.summary.log_tail = tail.lines();
  report_finish(ctx, cfg, out.summary);
  ctx.emit_json({{"type", "run_finished"},
                 {"failures", out.failures()},
                 {"exit_code", out.exit_code()},
                 {"seconds", out.summary.seconds},
                 {"result", out.summary.result_word()}});
  return out.exit_code();
}

}  // namespace

void register_run_command(CLI::App& app, Context& ctx) {
  auto args = std::make_shared<RunArgs>();
  auto* cmd = app.add_subcommand(
      "run",
      "The nightly chain from the config: back up every source into the vault, close it, "
      "replicate to every target; report (docs/man/coffer-run.md)");
  args->secrets.add_to(*cmd);
  cmd->add_flag("--verify", args->verify, "After replicating, have each C verify its copy");
  cmd->add_option("--wait", args->wait_seconds,
                  "Wait up to SECONDS for a running chain instead of exiting 11");
  cmd->add_option("--source", args->only_sources, "Only these [[source]] names");
  cmd->add_option("--target", args->only_targets, "Only these [[target]] names");
  cmd->callback([&ctx, args] { ctx.action = [&ctx, args] { return run_chain(ctx, *args); }; });
}

}  // namespace coffer::cli
