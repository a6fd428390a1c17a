// coffer ls / find / diff: answers from the catalogs (docs/restore.md).
#include <fmt/format.h>
#include <ctime>

#include "coffer/restore/browse.hpp"
#include "coffer/restore/restore.hpp"
#include "coffer/restore/source.hpp"
#include "coffer/util/error.hpp"
#include "coffer/util/units.hpp"
#include "context.hpp"
#include "exit_codes.hpp"
#include "sources.hpp"

namespace coffer::cli {
namespace {

using snapshot::CatalogEntry;
using snapshot::EntryType;

std::string shown(std::string_view path) {
  return path.empty() ? "." : snapshot::escape_path(path);
}

std::string mode_string(const CatalogEntry& e) {
  static const char types[] = {'-', 'd', 'l', 'p', 's', 'c', 'b'};
  char t = '-';
  switch (e.type) {
    case EntryType::regular:
      t = types[0];
      break;
    case EntryType::directory:
      t = types[1];
      break;
    case EntryType::symlink:
      t = types[2];
      break;
    case EntryType::fifo:
      t = types[3];
      break;
    case EntryType::socket:
      t = types[4];
      break;
    case EntryType::char_device:
      t = types[5];
      break;
    case EntryType::block_device:
      t = types[6];
      break;
  }
  std::string s(1, t);
  const char* rwx = "rwxrwxrwx";
  for (int i = 0; i < 9; ++i) s += (e.mode & (0400u >> i)) ? rwx[i] : '-';
  if (e.mode & 04000) s[3] = (e.mode & 0100) ? 's' : 'S';
  if (e.mode & 02000) s[6] = (e.mode & 0010) ? 's' : 'S';
  if (e.mode & 01000) s[9] = (e.mode & 0001) ? 't' : 'T';
  return s;
}

std::string utc_time(std::int64_t sec, std::uint32_t nsec) {
  std::time_t t = static_cast<std::time_t>(sec);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return fmt::format("{}.{:09}Z", buf, nsec);
}

nlohmann::json entry_json(const CatalogEntry& e) {
  nlohmann::json j = {{"path", shown(e.path)},
                      {"kind", std::string(1, static_cast<char>(e.type))},
                      {"mode", fmt::format("{:04o}", e.mode)},
                      {"uid", e.uid},
                      {"gid", e.gid},
                      {"size", e.size},
                      {"mtime", fmt::format("{}.{:09}", e.mtime_sec, e.mtime_nsec)}};
  if (e.hash) j["blake2b"] = to_hex(e.hash->data(), e.hash->size());
  if (e.type == EntryType::symlink) j["target"] = snapshot::escape_path(e.link_target);
  if (e.link_group) j["link_group"] = e.link_group;
  return j;
}

std::string long_line(const CatalogEntry& e) {
  std::string line = fmt::format("{} {:>6} {:>6} {:>12} {} {}", mode_string(e), e.uid, e.gid,
                                 e.size, utc_time(e.mtime_sec, e.mtime_nsec), shown(e.path));
  if (e.type == EntryType::symlink) line += " -> " + snapshot::escape_path(e.link_target);
  return line;
}

void register_ls(CLI::App& app, Context& ctx) {
  struct Args {
    std::string repo, snapshot, name;
    bool long_format = false, recursive = false;
    SourceOptions source;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("ls", "List a directory of a snapshot (from its catalog)");
  cmd->add_option("repo", a->repo,
                  "Snapshot root (the mounted vault), a closed vault image, or a replica on C")
      ->required();
  cmd->add_option("snapshot", a->snapshot,
                  "SNAPSHOT[:PATH] (latest, a time, NAME/latest, NAME/TIME)")
      ->required();
  cmd->add_option("--name", a->name, "The source (hosts/NAME) when REPO holds several");
  cmd->add_flag("-l,--long", a->long_format, "Type, mode, owner, size and mtime");
  cmd->add_flag("-R,--recursive", a->recursive, "Everything below PATH");
  a->source.add_to(*cmd);
  cmd->callback([&ctx, a] {
    ctx.action = [&ctx, a]() -> int {
      auto [spec, path] = restore::split_snapshot_arg(a->snapshot);
      auto src = a->source.open_any(ctx, a->repo);
      auto snap = restore::resolve_snapshot(*src, spec, a->name);
      auto cat = src->catalog(snap);
      for (const CatalogEntry* e :
           restore::list_entries(cat, restore::normalize_snapshot_path(path), a->recursive,
                                 src->catalog_path(snap))) {
        std::string slash = e->type == EntryType::directory ? "/" : "";
        ctx.say(a->long_format ? long_line(*e) : shown(e->path) + slash);
        nlohmann::json j = entry_json(*e);
        j["type"] = "entry";
        j["host"] = snap.host;
        j["snapshot"] = snap.name;
        ctx.emit_json(j);
      }
      return int{kOk};
    };
  });
}

void register_find(CLI::App& app, Context& ctx) {
  struct Args {
    std::string repo, pattern, name;
    SourceOptions source;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("find", "Which snapshots hold a path matching PATTERN");
  cmd->add_option("repo", a->repo,
                  "Snapshot root (the mounted vault), a closed vault image, or a replica on C")
      ->required();
  cmd->add_option("pattern", a->pattern, "rsync-style pattern (without '/': the last component)")
      ->required();
  cmd->add_option("--name", a->name, "Only this source's snapshots");
  a->source.add_to(*cmd);
  cmd->callback([&ctx, a] {
    ctx.action = [&ctx, a]() -> int {
      auto hits = restore::find_entries(*a->source.open_any(ctx, a->repo), a->pattern, a->name);
      for (const auto& h : hits) {
        ctx.say(fmt::format("{}/{}  {:>12}  {}  {}{}", h.snapshot.host, h.snapshot.name,
                            h.entry.size, utc_time(h.entry.mtime_sec, h.entry.mtime_nsec),
                            shown(h.entry.path), h.entry.type == EntryType::directory ? "/" : ""));
        nlohmann::json j = entry_json(h.entry);
        j["type"] = "found";
        j["host"] = h.snapshot.host;
        j["snapshot"] = h.snapshot.name;
        ctx.emit_json(j);
      }
      if (hits.empty()) ctx.say("no snapshot holds a path matching " + a->pattern);
      ctx.emit_json({{"type", "summary"}, {"command", "find"}, {"matches", hits.size()}});
      return int{kOk};
    };
  });
}

void register_diff(CLI::App& app, Context& ctx) {
  struct Args {
    std::string repo, first, second, name;
    SourceOptions source;
  };
  auto a = std::make_shared<Args>();
  auto* cmd =
      app.add_subcommand("diff", "What changed between two snapshots (from their catalogs)");
  cmd->add_option("repo", a->repo,
                  "Snapshot root (the mounted vault), a closed vault image, or a replica on C")
      ->required();
  cmd->add_option("snap1", a->first, "The older snapshot")->required();
  cmd->add_option("snap2", a->second, "The newer snapshot (same source unless NAME/ is given)")
      ->required();
  cmd->add_option("--name", a->name, "The source (hosts/NAME) when REPO holds several");
  a->source.add_to(*cmd);
  cmd->callback([&ctx, a] {
    ctx.action = [&ctx, a]() -> int {
      auto src = a->source.open_any(ctx, a->repo);
      auto s1 = restore::resolve_snapshot(*src, a->first, a->name);
      bool own_name = a->second.find('/') != std::string::npos || !a->name.empty();
      auto s2 = restore::resolve_snapshot(*src, a->second, own_name ? a->name : s1.host);
      auto c1 = src->catalog(s1);
      auto c2 = src->catalog(s2);
      std::uint64_t counts[4] = {0, 0, 0, 0};
      for (const auto& d : restore::diff_catalogs(c1, c2)) {
        ++counts[static_cast<int>(d.change)];
        static const char marks[] = {'+', '-', 'M', 'm'};
        std::string fields;
        for (const auto& f : d.fields) fields += (fields.empty() ? "" : ", ") + f;
        ctx.say(fmt::format("{} {}{}", marks[static_cast<int>(d.change)], shown(d.path),
                            fields.empty() ? "" : "  (" + fields + ")"));
        ctx.emit_json({{"type", "diff"},
                       {"change", restore::change_name(d.change)},
                       {"path", shown(d.path)},
                       {"fields", d.fields}});
      }
      ctx.say(fmt::format(
          "{}/{} -> {}/{}: {} added, {} removed, {} changed content, {} changed metadata", s1.host,
          s1.name, s2.host, s2.name, counts[0], counts[1], counts[2], counts[3]));
      ctx.emit_json({{"type", "summary"},
                     {"command", "diff"},
                     {"from", s1.host + "/" + s1.name},
                     {"to", s2.host + "/" + s2.name},
                     {"added", counts[0]},
                     {"removed", counts[1]},
                     {"content", counts[2]},
                     {"metadata", counts[3]}});
      return int{kOk};
    };
  });
}

}  // namespace

void register_browse_commands(CLI::App& app, Context& ctx) {
  register_ls(app, ctx);
  register_find(app, ctx);
  register_diff(app, ctx);
}

}  // namespace coffer::cli
