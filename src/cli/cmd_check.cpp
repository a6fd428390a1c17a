// coffer check REPO: snapshots against their catalogs (docs/man/coffer-check.md). Damage exits
// 13 and names every damaged path and every snapshot sharing its inode.
#include <fmt/format.h>

#include "coffer/snapshot/catalog.hpp"
#include "coffer/snapshot/check.hpp"
#include "coffer/snapshot/layout.hpp"
#include "coffer/util/error.hpp"
#include "coffer/util/units.hpp"
#include "context.hpp"
#include "exit_codes.hpp"

namespace coffer::cli {
namespace {

struct CheckArgs {
  std::string repo, name, subset;
  bool read_data = false;
};

snapshot::CheckOptions parse_subset(const std::string& text, snapshot::CheckOptions o) {
  auto bad = [&] {
    fail(ErrorKind::usage, "parse --read-data-subset", text,
         "expected N% (0 < N <= 100) or K/T (1 <= K <= T)");
  };
  o.read_data = true;
  try {
    if (!text.empty() && text.back() == '%') {
      std::size_t used = 0;
      o.percent = std::stod(text.substr(0, text.size() - 1), &used);
      if (used != text.size() - 1 || !(o.percent > 0) || o.percent > 100) bad();
      return o;
    }
    auto slash = text.find('/');
    if (slash == std::string::npos) bad();
    std::size_t u1 = 0, u2 = 0;
    unsigned long k = std::stoul(text.substr(0, slash), &u1);
    unsigned long t = std::stoul(text.substr(slash + 1), &u2);
    if (u1 != slash || u2 != text.size() - slash - 1 || k < 1 || k > t || t > 1000000) bad();
    o.subset_k = static_cast<unsigned>(k);
    o.subset_t = static_cast<unsigned>(t);
  } catch (const std::logic_error&) {
    bad();
  }
  return o;
}

nlohmann::json names_json(const std::vector<snapshot::SnapshotPath>& names) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& n : names)
    out.push_back({{"snapshot", n.snapshot}, {"path", snapshot::escape_path(n.path)}});
  return out;
}

}  // namespace

void register_check_command(CLI::App& app, Context& ctx) {
  auto args = std::make_shared<CheckArgs>();
  auto* cmd =
      app.add_subcommand("check", "Check snapshots against their catalogs (exit 13 on damage)");
  cmd->add_option("repo", args->repo, "Snapshot root (the mounted vault)")->required();
  cmd->add_option("--name", args->name, "Only this source's snapshots (hosts/NAME)");
  auto* all =
      cmd->add_flag("--read-data", args->read_data, "Also read every file and compare its BLAKE2b");
  cmd->add_option("--read-data-subset", args->subset,
                  "Read only N% of the files (random) or part K of T (K/T; parts 1..T cover all)")
      ->excludes(all);
  cmd->callback([&ctx, args] {
    ctx.action = [&ctx, args]() -> int {
      snapshot::CheckOptions opt;
      opt.read_data = args->read_data;
      if (!args->subset.empty()) opt = parse_subset(args->subset, opt);
      std::filesystem::path root = args->repo;
      if (!std::filesystem::is_directory(root))
        fail(ErrorKind::missing, "check", root.native(), "no such directory");
      std::vector<std::string> hosts =
          args->name.empty() ? snapshot::list_hosts(root) : std::vector<std::string>{args->name};
      if (!args->name.empty() && !std::filesystem::is_directory(root / "hosts" / args->name))
        fail(ErrorKind::missing, "check", (root / "hosts" / args->name).native(), "no such source");
      snapshot::CheckReport report;
      for (const auto& h : hosts) snapshot::check_host(root, h, opt, report);
      for (const auto& d : report.damage) {
        std::string shared;
        for (const auto& n : d.shared)
          if (n.snapshot != d.where.snapshot || n.path != d.where.path)
            shared += fmt::format("{}{}:{}", shared.empty() ? "" : ", ", n.snapshot,
                                  n.path.empty() ? "." : snapshot::escape_path(n.path));
        ctx.say(fmt::format("damaged: hosts/{}/{}/tree/{}: {}{}", d.host, d.where.snapshot,
                            d.where.path.empty() ? "." : snapshot::escape_path(d.where.path),
                            d.reason, shared.empty() ? "" : " (same inode in " + shared + ")"));
        ctx.emit_json({{"type", "damage"},
                       {"host", d.host},
                       {"snapshot", d.where.snapshot},
                       {"path", snapshot::escape_path(d.where.path)},
                       {"reason", d.reason},
                       {"shared", names_json(d.shared)}});
      }
      ctx.say(fmt::format("checked {} snapshot(s), {} entries; read {} file(s), {}; {} damaged",
                          report.snapshots, report.entries, report.inodes_read,
                          format_size(report.bytes_read), report.damage.size()));
      ctx.emit_json({{"type", "summary"},
                     {"snapshots", report.snapshots},
                     {"entries", report.entries},
                     {"files_read", report.inodes_read},
                     {"bytes_read", report.bytes_read},
                     {"damaged", report.damage.size()}});
      if (!report.damage.empty())
        fail(ErrorKind::integrity, "check", root.native(),
             fmt::format("{} damaged path(s) (listed above)", report.damage.size()));
      return int{kOk};
    };
  });
}

}  // namespace coffer::cli
