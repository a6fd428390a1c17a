// coffer restore REPO SNAPSHOT[:PATH] TARGET (docs/restore.md, docs/man/coffer-restore.md).
#include <fmt/format.h>
#include <unistd.h>

#include "coffer/restore/restore.hpp"
#include "coffer/snapshot/catalog.hpp"
#include "coffer/transfer/backup.hpp"
#include "coffer/util/error.hpp"
#include "coffer/util/log.hpp"
#include "coffer/util/units.hpp"
#include "context.hpp"
#include "exit_codes.hpp"
#include "progress.hpp"
#include "sources.hpp"

namespace coffer::cli {
namespace {

struct RestoreArgs {
  std::string repo, snapshot, target, overwrite;
  restore::RestoreRequest req;
  std::vector<std::string> exclude_from;
  SourceOptions source;
};

restore::Overwrite parse_overwrite(const std::string& s) {
  if (s.empty()) return restore::Overwrite::refuse;
  if (s == "never") return restore::Overwrite::never;
  if (s == "if-changed") return restore::Overwrite::if_changed;
  if (s == "always") return restore::Overwrite::always;
  fail(ErrorKind::usage, "parse --overwrite", s, "expected never, if-changed or always");
}

std::string shown(std::string_view rel) {
  return rel.empty() ? "." : snapshot::escape_path(rel);
}

}  // namespace

void register_restore_commands(CLI::App& app, Context& ctx) {
  add_restore_command(app, ctx, "Restore a snapshot, or a path in it, into TARGET");
}

void add_restore_command(CLI::App& app, Context& ctx, const std::string& help) {
  auto args = std::make_shared<RestoreArgs>();
  auto* cmd = app.add_subcommand("restore", help);
  cmd->add_option("repo", args->repo,
                  "Snapshot root (the mounted vault), a closed vault image, or a replica on C "
                  "(DIR or [user@]host:DIR)")
      ->required();
  cmd->add_option("snapshot", args->snapshot,
                  "latest, a snapshot time, NAME/latest or NAME/TIME; :PATH restores a path in it")
      ->required();
  cmd->add_option("target", args->target, "Directory to restore into")->required();
  cmd->add_option("--name", args->req.name, "The source (hosts/NAME) when REPO holds several");
  cmd->add_option_function<std::string>(
         "--exclude", [args](const std::string& p) { args->req.filter_rules.push_back("- " + p); },
         "Do not restore paths matching PATTERN (the backup's rsync syntax)")
      ->trigger_on_parse()
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd->add_option_function<std::string>(
         "--include", [args](const std::string& p) { args->req.filter_rules.push_back("+ " + p); },
         "Restore paths matching PATTERN even if a later --exclude matches")
      ->trigger_on_parse()
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd->add_option("--exclude-from", args->exclude_from, "File of rules, one per line");
  cmd->add_option("--overwrite", args->overwrite,
                  "never, if-changed or always (default: refuse a non-empty TARGET)");
  cmd->add_flag("--delete", args->req.remove_extra,
                "Remove what TARGET has and the snapshot does not (needs --overwrite)");
  cmd->add_flag("--verify", args->req.verify,
                "Re-read every restored file and compare it with the catalog's BLAKE2b");
  args->source.add_to(*cmd);
  cmd->callback([&ctx, args] {
    ctx.action = [&ctx, args]() -> int {
      restore::RestoreRequest req = args->req;
      req.repo = args->repo;
      req.source = args->source.open(ctx, args->repo);
      auto [snap, path] = restore::split_snapshot_arg(args->snapshot);
      req.snapshot = snap;
      req.path = path;
      req.target = args->target;
      req.overwrite = parse_overwrite(args->overwrite);
      req.dry_run = ctx.global.dry_run;
      for (const auto& file : args->exclude_from)
        for (auto& rule : transfer::read_filter_file(file))
          req.filter_rules.push_back(std::move(rule));
      bool list_actions = req.dry_run || ctx.global.verbose > 0;
      Progress progress(ctx, Progress::Unit::entries, !list_actions);
      restore::RestoreCallbacks cb;
      cb.on_action = [&](restore::Action a, std::string_view rel) {
        if (!list_actions) return;
        ctx.say(fmt::format("{:<9} {}", restore::action_name(a), shown(rel)));
        ctx.emit_json(
            {{"type", "action"}, {"action", restore::action_name(a)}, {"path", shown(rel)}});
      };
      cb.on_warning = [&](std::string_view rel, std::string_view message) {
        log::warn("{}: {}", shown(rel), message);
      };
      cb.on_progress = [&](std::uint64_t done, std::uint64_t total, std::uint64_t bytes) {
        progress.update(done, total, bytes);
      };
      restore::RestoreResult r;
      std::string from_c;
      auto report_fetched = [&] {
        auto f = args->source.fetched();
        if (!f) return;
        from_c = fmt::format(", {} fetched from C ({} blocks)", format_size(f->bytes), f->blocks);
        ctx.emit_json({{"type", "fetched"},
                       {"source", args->repo},
                       {"blocks", f->blocks},
                       {"bytes", f->bytes},
                       {"bytes_received", f->received}});
      };
      try {
        r = restore::run_restore(req, cb);
      } catch (const Error&) {
        report_fetched();
        throw;
      }
      report_fetched();
      if (r.chown_skipped > 0)
        log::warn(
            "not running as root: the owners of {} entries were not restored (they belong to uid "
            "{})",
            r.chown_skipped, ::geteuid());
      std::string what =
          fmt::format("hosts/{}/{}{}{}", r.host, r.snapshot, path.empty() ? "" : ":", path);
      ctx.say(fmt::format(
          "{} {} into {}: {} entries, {} restored, {} updated, {} unchanged, {} skipped, "
          "{} deleted, {} written{}{}",
          req.dry_run ? "would restore" : "restored", what, req.target.native(), r.entries,
          r.restored, r.updated, r.unchanged, r.skipped, r.deleted, format_size(r.bytes),
          req.verify && !req.dry_run ? fmt::format(", {} files verified", r.verified) : "",
          from_c));
      ctx.emit_json({{"type", "summary"},
                     {"command", "restore"},
                     {"dry_run", req.dry_run},
                     {"host", r.host},
                     {"snapshot", r.snapshot},
                     {"path", path},
                     {"target", req.target.native()},
                     {"entries", r.entries},
                     {"restored", r.restored},
                     {"updated", r.updated},
                     {"unchanged", r.unchanged},
                     {"skipped", r.skipped},
                     {"deleted", r.deleted},
                     {"bytes", r.bytes},
                     {"verified", r.verified},
                     {"chown_skipped", r.chown_skipped},
                     {"warnings", r.warnings}});
      return r.warnings > 0 ? int{kWarnings} : int{kOk};
    };
  });
}

}  // namespace coffer::cli
