// coffer backup SOURCE REPO: one hard-linked snapshot of SOURCE in REPO (docs/snapshots.md).
#include <fmt/format.h>

#include "coffer/snapshot/catalog.hpp"
#include "coffer/transfer/backup.hpp"
#include "coffer/util/fd.hpp"
#include "coffer/util/log.hpp"
#include "coffer/util/units.hpp"
#include "context.hpp"
#include "exit_codes.hpp"

namespace coffer::cli {
namespace {

struct BackupArgs {
  transfer::BackupRequest req;
  std::vector<std::string> exclude_from;
};

nlohmann::json result_json(const transfer::BackupResult& r) {
  return {{"type", "backup"},
          {"host", r.host},
          {"snapshot", r.snapshot},
          {"entries", r.entries},
          {"linked", r.linked},
          {"resumed", r.resumed},
          {"copied", r.copied},
          {"delta_files", r.delta_files},
          {"data_files", r.data_files},
          {"bytes_total", r.bytes_total},
          {"bytes_to_receiver", r.bytes_to_receiver},
          {"bytes_to_sender", r.bytes_to_sender},
          {"warnings", r.warnings}};
}

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
      if (remote_cmd->count() > 0) req.local_agent_command = req.remote_command;
      for (const auto& file : args->exclude_from) {
        std::string text = read_file(file);
        std::string_view rest = text;
        while (!rest.empty()) {
          auto nl = rest.find('\n');
          std::string_view line = rest.substr(0, nl);
          rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
          if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
          if (line.empty() || line[0] == '#' || line[0] == ';') continue;
          bool prefixed = line.size() > 2 && (line[0] == '-' || line[0] == '+') && line[1] == ' ';
          req.filter_rules.push_back(prefixed ? std::string(line) : "- " + std::string(line));
        }
      }
      auto warn = [&ctx](std::string_view path, std::string_view message) {
        log::warn("{}: {}", path.empty() ? "." : snapshot::escape_path(path), message);
        ctx.emit_json({{"type", "warning"}, {"path", snapshot::escape_path(path)}, {"message", message}});
      };
      transfer::BackupResult r = transfer::run_backup(req, warn);
      ctx.say(fmt::format("snapshot hosts/{}/{} complete: {} entries ({}), {} linked, {} copied on B, "
                          "{} deltas, {} sent whole, {} resumed",
                          r.host, r.snapshot, r.entries, format_size(r.bytes_total), r.linked,
                          r.copied, r.delta_files, r.data_files, r.resumed));
      ctx.say(fmt::format("protocol bytes: {} to the receiver, {} to the sender", r.bytes_to_receiver,
                          r.bytes_to_sender));
      if (r.warnings > 0) ctx.say(fmt::format("{} warnings (see above)", r.warnings));
      ctx.emit_json(result_json(r));
      return r.warnings > 0 ? int{kWarnings} : int{kOk};
    };
  });
}

}  // namespace coffer::cli
