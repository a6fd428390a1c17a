// coffer status: for every configured source and target, the last success recorded by
// `coffer run` (docs/report.md, "State file") and whether it is stale by [report] warn_after /
// crit_after. Exit 0 fresh, 1 warn, 2 crit: the Nagios plugin convention, so it doubles as a
// check (docs/man/coffer-status.md).
#include <fmt/format.h>
#include <ctime>

#include "coffer/replicate/manifest.hpp"
#include "coffer/report/report.hpp"
#include "coffer/snapshot/retention.hpp"
#include "coffer/util/units.hpp"
#include "context.hpp"
#include "run_support.hpp"

namespace coffer::cli {
namespace {

enum class Freshness { ok = 0, warn = 1, crit = 2 };
const char* freshness_name(Freshness f) {
  return f == Freshness::ok ? "ok" : f == Freshness::warn ? "warn" : "crit";
}

std::string age_text(std::int64_t seconds) {
  if (seconds < 0) seconds = 0;
  if (seconds < 3600) return fmt::format("{}m", seconds / 60);
  if (seconds < 86400) return fmt::format("{}h{:02}m", seconds / 3600, seconds % 3600 / 60);
  return fmt::format("{}d{:02}h", seconds / 86400, seconds % 86400 / 3600);
}

struct Row {
  std::string kind, name, where;
  const report::ItemState* state = nullptr;
  Freshness fresh = Freshness::crit;
};

int show_status(Context& ctx) {
  const config::Config& cfg = ctx.require_config();
  report::RunState state = report::load_state(run_state_path(cfg));
  std::time_t now = std::time(nullptr);
  // Calendar arithmetic, as retention's `within`: "1m" is a month back from now, in UTC.
  std::time_t warn_before = snapshot::within_cutoff(now, cfg.report.warn_after);
  std::time_t crit_before = snapshot::within_cutoff(now, cfg.report.crit_after);
  std::vector<Row> rows;
  for (const auto& s : cfg.sources) rows.push_back({"source", s.name, s.path});
  for (const auto& t : cfg.targets) rows.push_back({"target", t.name, t.dest});
  Freshness worst = Freshness::ok;
  for (auto& r : rows) {
    r.state = state.find(r.kind, r.name);
    std::int64_t last = r.state ? r.state->last_success : 0;
    r.fresh = last == 0 || last < crit_before ? Freshness::crit
              : last < warn_before            ? Freshness::warn
                                              : Freshness::ok;
    if (static_cast<int>(r.fresh) > static_cast<int>(worst)) worst = r.fresh;
  }
  if (!ctx.global.json) {
    ctx.say(fmt::format("{:<7} {:<16} {:<24} {:>7} {:>10} {:>6}  {:<5} {}", "KIND", "NAME",
                        "LAST SUCCESS", "AGE", "BYTES", "GEN", "STATE", "LAST RESULT"));
  }
  for (const auto& r : rows) {
    std::int64_t last = r.state ? r.state->last_success : 0;
    std::uint64_t count = !r.state             ? 0
                          : r.kind == "source" ? r.state->snapshots
                                               : r.state->generation;
    std::string result = r.state ? r.state->last_result : "never run";
    if (r.state && !r.state->last_error.empty()) result += ": " + r.state->last_error;
    ctx.say(fmt::format(
        "{:<7} {:<16} {:<24} {:>7} {:>10} {:>6}  {:<5} {}", r.kind, r.name,
        last ? replicate::format_time(last) : "never", last ? age_text(now - last) : "-",
        r.state ? format_size(r.state->bytes_last) : "-", count, freshness_name(r.fresh), result));
    nlohmann::json j = {{"type", "status"},
                        {"kind", r.kind},
                        {"name", r.name},
                        {"where", r.where},
                        {"last_success", last},
                        {"age_seconds", last ? nlohmann::json(now - last) : nlohmann::json()},
                        {"state", freshness_name(r.fresh)},
                        {"last_result", r.state ? r.state->last_result : ""},
                        {"last_error", r.state ? r.state->last_error : ""},
                        {"bytes", r.state ? r.state->bytes_last : 0}};
    if (r.kind == "source")
      j["snapshots"] = count;
    else
      j["generation"] = count;
    ctx.emit_json(j);
  }
  ctx.emit_json({{"type", "status_summary"},
                 {"state", freshness_name(worst)},
                 {"last_run", state.last_run},
                 {"last_exit_code", state.last_exit_code},
                 {"warn_after", format_calendar_duration(cfg.report.warn_after)},
                 {"crit_after", format_calendar_duration(cfg.report.crit_after)}});
  return static_cast<int>(worst);
}

}  // namespace

void register_status_command(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand(
      "status",
      "Last success of every source and target, stale by [report] warn_after/crit_after "
      "(exit 0 ok, 1 warn, 2 crit; docs/man/coffer-status.md)");
  cmd->callback([&ctx] { ctx.action = [&ctx] { return show_status(ctx); }; });
}

}  // namespace coffer::cli
