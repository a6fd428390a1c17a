// One source of `coffer run`: its hooks around the backup and the retention that follows it.
// Hooks are argv lists run without a shell (docs/report.md, "Hooks").
#include <fmt/format.h>
#include <unistd.h>
#include <optional>

#include "coffer/util/fd.hpp"
#include "coffer/util/log.hpp"
#include "coffer/util/process.hpp"
#include "coffer/util/signals.hpp"
#include "run_support.hpp"
#include "steps.hpp"

namespace coffer::cli {
namespace {

using report::Result;

// Runs one hook with the source's name and result in its environment. Its stdout becomes log
// lines (coffer's own stdout may be --json), its stderr is coffer's. Throws Error naming the
// hook when it cannot start or exits non-zero.
void run_hook(const char* which, const std::vector<std::string>& argv, const config::Source& s,
              Result result, const std::string& error) {
  std::string what = fmt::format("{} hook of source {}", which, s.name);
  SpawnOptions o;
  o.null_stdin = true;
  o.pipe_stdout = true;
  o.env_overrides = {"COFFER_HOOK=" + std::string(which), "COFFER_SOURCE=" + s.name,
                     "COFFER_SOURCE_PATH=" + s.path,
                     "COFFER_RESULT=" + std::string(report::result_name(result)),
                     "COFFER_ERROR=" + error};
  std::vector<std::string> args = argv;
  if (auto found = find_program(args.front())) args.front() = *found;
  Process p(args, o);
  std::string out, chunk(4096, '\0');
  for (;;) {
    ssize_t n = ::read(p.stdout_fd().get(), chunk.data(), chunk.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(chunk.data(), static_cast<std::size_t>(n));
  }
  for (std::size_t at = 0; at < out.size();) {
    std::size_t nl = out.find('\n', at);
    if (nl == std::string::npos) nl = out.size();
    if (nl > at) log::info("{}: {}", what, out.substr(at, nl - at));
    at = nl + 1;
  }
  int code = p.wait();
  if (code != 0)
    fail(ErrorKind::failed, "run", what, fmt::format("{} exited with {}", argv.front(), code));
}

}  // namespace

report::SourceRun run_source(Context& ctx, const config::Config& cfg, const config::Source& source,
                             const std::filesystem::path& repo, Outcome& out) {
  report::SourceRun rec;
  rec.name = source.name;
  rec.path = source.path;
  auto failed = [&](const std::string& step, const Error& e) {
    rec.result = Result::failed;
    if (rec.error.empty()) rec.error = fmt::format("{} failed: {}", step, e.what());
    out.failed(step, e);
  };
  // Returns the hook's failure (empty: it succeeded or there is none).
  auto hook = [&](const char* which, const std::vector<std::string>& argv) -> std::optional<Error> {
    if (argv.empty()) return std::nullopt;
    ctx.emit_json(
        {{"type", "step_start"}, {"step", "hook"}, {"hook", which}, {"source", source.name}});
    try {
      run_hook(which, argv, source, rec.result, rec.error);
      return std::nullopt;
    } catch (const Error& e) {
      if (e.kind() == ErrorKind::interrupted) throw;
      return e;
    }
  };
  auto finish = [&] {
    ctx.emit_json({{"type", "source_result"},
                   {"source", source.name},
                   {"path", source.path},
                   {"result", report::result_name(rec.result)},
                   {"snapshot", rec.snapshot},
                   {"bytes_sent", rec.bytes_sent},
                   {"snapshots", rec.snapshots},
                   {"error", rec.error}});
    return rec;
  };
  check_interrupted("run");

  if (std::optional<Error> e = hook("before", source.before)) {
    try {
      throw *e;
    } catch (const Error& thrown) {
      failed("before hook of source " + source.name + " (source skipped)", thrown);
    }
    rec.result = Result::skipped;
    if (auto f = hook("on_failure", source.on_failure)) log::warn("{}", f->what());
    return finish();
  }

  ctx.emit_json({{"type", "step_start"}, {"step", "backup"}, {"source", source.name}});
  try {
    transfer::BackupResult r = run_reported_backup(ctx, backup_request(source, repo));
    rec.snapshot = r.snapshot;
    rec.bytes_sent = r.bytes_to_receiver;
    if (r.warnings) {
      rec.result = Result::warnings;
      out.warned();
    }
  } catch (const Error& e) {
    failed("backup of source " + source.name, e);
  }
  // No rotation after a failed backup: the snapshots stay as they were.
  if (rec.result == Result::ok || rec.result == Result::warnings) {
    ctx.emit_json({{"type", "step_start"}, {"step", "retention"}, {"source", source.name}});
    try {
      const config::Retention& keep = source.keep ? *source.keep : cfg.retention;
      ForgetReport f = run_reported_forget(ctx, repo, source.name, policy_from_config(keep), false);
      rec.snapshots = f.kept;
    } catch (const Error& e) {
      failed("retention of source " + source.name, e);
    }
  }
  bool good = rec.result == Result::ok || rec.result == Result::warnings;
  if (auto e = hook(good ? "after" : "on_failure", good ? source.after : source.on_failure)) {
    // The backup itself stands; a hook that fails afterwards is worth a warning.
    log::warn("{}", e->what());
    out.warned();
  }
  return finish();
}

}  // namespace coffer::cli
