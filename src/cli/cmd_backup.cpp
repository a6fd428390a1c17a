// coffer backup SOURCE REPO: one hard-linked snapshot of SOURCE in REPO (docs/snapshots.md).
#include "coffer/transfer/backup.hpp"
#include "coffer/util/error.hpp"
#include "context.hpp"
#include "exit_codes.hpp"
#include "steps.hpp"

namespace coffer::cli {
namespace {

struct BackupArgs {
  transfer::BackupRequest req;
  std::vector<std::string> exclude_from;
};

}  // namespace

void register_backup_commands(CLI::App& app, Context& ctx) {
  auto args = std::make_shared<BackupArgs>();
  auto* cmd = app.add_subcommand("backup", "Copy SOURCE into a new hard-linked snapshot in REPO");
  cmd->add_option("source", args->req.source, "Local directory or [user@]host:PATH")->required();
  cmd->add_option("repo", args->req.repo, "Snapshot root (the mounted vault) or [user@]host:DIR")
      ->required();
  cmd->add_option("--name", args->req.name,
                  "Snapshot directory under hosts/ (default: the host, or the source's basename)");
  // Rules keep their command-line order: the first rule that matches a path decides.
  cmd->add_option_function<std::string>(
         "--exclude", [args](const std::string& p) { args->req.filter_rules.push_back("- " + p); },
         "Exclude paths matching PATTERN (rsync syntax)")
      ->trigger_on_parse()
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd->add_option_function<std::string>(
         "--include", [args](const std::string& p) { args->req.filter_rules.push_back("+ " + p); },
         "Keep paths matching PATTERN even if a later --exclude matches")
      ->trigger_on_parse()
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd->add_option("--exclude-from", args->exclude_from,
                  "File of rules, one per line ('- PATTERN', '+ PATTERN' or PATTERN)");
  cmd->add_flag("-x,--one-file-system", args->req.one_file_system,
                "Do not cross file system boundaries on the source");
  auto* remote_cmd = cmd->add_option("--remote-command", args->req.remote_command,
                                     "How to run coffer on the other side (default: coffer from "
                                     "the remote PATH; for a local SOURCE, this binary)");
  cmd->callback([&ctx, args, remote_cmd] {
    ctx.action = [&ctx, args, remote_cmd]() -> int {
      transfer::BackupRequest req = args->req;
      // An empty word (an unset shell variable) is a mistake on the command line, not a path.
      if (req.source.empty()) fail(ErrorKind::usage, "back up", "SOURCE", "is an empty string");
      if (req.repo.empty()) fail(ErrorKind::usage, "back up into", "REPO", "is an empty string");
      if (remote_cmd->count() > 0) req.local_agent_command = req.remote_command;
      req.dry_run = ctx.global.dry_run;
      for (const auto& file : args->exclude_from)
        for (auto& rule : transfer::read_filter_file(file))
          req.filter_rules.push_back(std::move(rule));
      transfer::BackupResult r = run_reported_backup(ctx, req);
      return r.warnings > 0 ? int{kWarnings} : int{kOk};
    };
  });
}

}  // namespace coffer::cli
