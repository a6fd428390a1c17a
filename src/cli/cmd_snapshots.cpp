// coffer snapshots REPO: the complete snapshots of each host, oldest first.
#include <fmt/format.h>

#include "coffer/snapshot/layout.hpp"
#include "coffer/snapshot/usage.hpp"
#include "coffer/util/error.hpp"
#include "coffer/util/units.hpp"
#include "context.hpp"
#include "exit_codes.hpp"

namespace coffer::cli {

void register_snapshot_commands(CLI::App& app, Context& ctx) {
  auto repo = std::make_shared<std::string>();
  auto host = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand("snapshots", "List the complete snapshots in REPO");
  cmd->add_option("repo", *repo, "Snapshot root (the mounted vault)")->required();
  cmd->add_option("--host", *host, "Only this host's snapshots");
  cmd->callback([&ctx, repo, host] {
    ctx.action = [&ctx, repo, host]() -> int {
      std::filesystem::path root = *repo;
      if (!std::filesystem::is_directory(root))
        fail(ErrorKind::missing, "list snapshots in", root.native(), "no such directory");
      std::vector<std::string> hosts =
          host->empty() ? snapshot::list_hosts(root) : std::vector<std::string>{*host};
      std::size_t count = 0;
      for (const auto& h : hosts) {
        auto snaps = snapshot::list_complete(root, h);
        auto added = snapshot::added_bytes(snaps);
        for (std::size_t i = 0; i < snaps.size(); ++i) {
          const auto& s = snaps[i];
          ++count;
          ctx.say(fmt::format(
              "{:<20} {}  {:>9} entries  {:>10}  adds {:>10}  {}{}", h, s.name, s.marker.entries,
              format_size(s.marker.bytes), format_size(added[i]), s.marker.source,
              s.marker.warnings ? fmt::format("  ({} warnings)", s.marker.warnings) : ""));
          ctx.emit_json({{"type", "snapshot"},
                         {"host", h},
                         {"name", s.name},
                         {"time", s.time},
                         {"path", s.dir.native()},
                         {"tree", s.tree().native()},
                         {"source", s.marker.source},
                         {"entries", s.marker.entries},
                         {"bytes", s.marker.bytes},
                         {"added_bytes", added[i]},
                         {"warnings", s.marker.warnings},
                         {"started", s.marker.started},
                         {"finished", s.marker.finished}});
        }
      }
      if (count == 0) ctx.say("no complete snapshots");
      return int{kOk};
    };
  });
}

}  // namespace coffer::cli
