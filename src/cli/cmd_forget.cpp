// coffer forget REPO: applies a retention policy to each source's snapshots (docs/snapshots.md,
// "Retention"; docs/man/coffer-forget.md).
#include <fmt/format.h>

#include "coffer/snapshot/layout.hpp"
#include "coffer/snapshot/removal.hpp"
#include "coffer/util/error.hpp"
#include "context.hpp"
#include "exit_codes.hpp"
#include "steps.hpp"

namespace coffer::cli {
namespace {

struct ForgetArgs {
  std::string repo;
  std::string name;
  snapshot::RetentionPolicy policy;
  std::string within;
  bool any_rule = false;
};

}  // namespace

snapshot::RetentionPolicy policy_from_config(const config::Retention& r) {
  snapshot::RetentionPolicy p;
  p.last = r.last;
  p.hourly = r.hourly;
  p.daily = r.daily;
  p.weekly = r.weekly;
  p.monthly = r.monthly;
  p.half_yearly = r.half_yearly;
  p.yearly = r.yearly;
  p.within = r.within;
  return p;
}

ForgetReport run_reported_forget(Context& ctx, const std::filesystem::path& repo,
                                 const std::string& host, const snapshot::RetentionPolicy& policy,
                                 bool dry_run) {
  FileLock lock = snapshot::lock_host(repo, host);
  auto snaps = snapshot::list_complete(repo, host);
  std::vector<snapshot::RetentionCandidate> in;
  for (const auto& s : snaps) in.push_back({s.name, s.time});
  std::optional<std::string> latest;
  std::error_code ec;
  auto target = std::filesystem::read_symlink(repo / "hosts" / host / "latest", ec);
  if (!ec) latest = target.filename().native();
  auto decisions = snapshot::apply_retention(policy, in, latest);
  ForgetReport report;
  std::vector<std::string> doomed;
  for (const auto& d : decisions) {
    nlohmann::json reasons = nlohmann::json::array();
    std::string text;
    for (auto r : d.reasons) {
      reasons.push_back(snapshot::keep_rule_name(r));
      text += (text.empty() ? "" : ", ") + std::string(snapshot::keep_rule_name(r));
    }
    if (d.keep()) {
      ++report.kept;
      ctx.say(fmt::format("keep   hosts/{}/{}  ({})", host, d.name, text));
    } else {
      doomed.push_back(d.name);
      ctx.say(fmt::format("{} hosts/{}/{}", dry_run ? "would remove" : "remove", host, d.name));
    }
    ctx.emit_json({{"type", "forget"},
                   {"host", host},
                   {"snapshot", d.name},
                   {"action", d.keep() ? "keep" : "remove"},
                   {"reasons", reasons},
                   {"dry_run", dry_run}});
  }
  report.removed = doomed.size();
  snapshot::RemovalStats stats;
  if (!dry_run) stats = snapshot::remove_snapshots(repo, host, doomed);
  ctx.say(fmt::format("hosts/{}: {} kept, {} {} ({}){}", host, report.kept, report.removed,
                      dry_run ? "would be removed" : "removed", policy.describe(),
                      stats.leftovers
                          ? fmt::format(", {} interrupted removal(s) finished", stats.leftovers)
                          : std::string()));
  ctx.emit_json({{"type", "forget_summary"},
                 {"host", host},
                 {"kept", report.kept},
                 {"removed", report.removed},
                 {"leftovers_finished", stats.leftovers},
                 {"entries_unlinked", stats.entries},
                 {"policy", policy.describe()},
                 {"dry_run", dry_run}});
  return report;
}

void register_forget_command(CLI::App& app, Context& ctx) {
  auto args = std::make_shared<ForgetArgs>();
  auto* cmd = app.add_subcommand(
      "forget", "Remove the snapshots a retention policy does not keep (default: [retention])");
  cmd->add_option("repo", args->repo, "Snapshot root (the mounted vault)")->required();
  cmd->add_option("--name", args->name, "Only this source's snapshots (hosts/NAME)");
  auto& p = args->policy;
  std::vector<CLI::Option*> rules = {
      cmd->add_option("--keep-last", p.last, "Keep the N newest snapshots"),
      cmd->add_option("--keep-hourly", p.hourly, "Keep the newest of each of the last N hours"),
      cmd->add_option("--keep-daily", p.daily, "Keep the newest of each of the last N days (UTC)"),
      cmd->add_option("--keep-weekly", p.weekly, "Keep the newest of each of the last N ISO weeks"),
      cmd->add_option("--keep-monthly", p.monthly, "Keep the newest of each of the last N months"),
      cmd->add_option("--keep-half-yearly", p.half_yearly,
                      "Keep the newest of each of the last N half-years"),
      cmd->add_option("--keep-yearly", p.yearly, "Keep the newest of each of the last N years"),
      cmd->add_option(
          "--keep-within", args->within,
          "Keep every snapshot younger than DURATION (30d, 1y6m, 36h) before the newest")};
  for (std::size_t i = 0; i + 1 < rules.size(); ++i) rules[i]->check(CLI::NonNegativeNumber);
  cmd->callback([&ctx, args, rules] {
    ctx.action = [&ctx, args, rules]() -> int {
      snapshot::RetentionPolicy policy = args->policy;
      bool any = false;
      for (auto* o : rules) any = any || o->count() > 0;
      if (!args->within.empty())
        policy.within = parse_calendar_duration(args->within, "--keep-within");
      if (!any) {
        const config::Config* cfg = ctx.config();
        if (!cfg)
          fail(ErrorKind::usage, "forget in", args->repo,
               "no policy: give --keep-* options or a config with [retention]");
        policy = policy_from_config(cfg->retention);
      }
      std::filesystem::path root = args->repo;
      if (!std::filesystem::is_directory(root))
        fail(ErrorKind::missing, "forget in", root.native(), "no such directory");
      if (!args->name.empty() && !snapshot::valid_host_name(args->name))
        fail(ErrorKind::usage, "forget in", args->name, "not a snapshot name");
      std::vector<std::string> hosts =
          args->name.empty() ? snapshot::list_hosts(root) : std::vector<std::string>{args->name};
      if (!args->name.empty() && !std::filesystem::is_directory(root / "hosts" / args->name))
        fail(ErrorKind::missing, "forget in", (root / "hosts" / args->name).native(),
             "no such source");
      if (policy.empty())  // also for a REPO without hosts: an empty policy is always refused
        snapshot::apply_retention(policy, {});
      for (const auto& h : hosts) run_reported_forget(ctx, root, h, policy, ctx.global.dry_run);
      return int{kOk};
    };
  });
}

}  // namespace coffer::cli
