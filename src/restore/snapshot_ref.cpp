// Which snapshot the user means: "latest", a time, "NAME/latest", "NAME/TIME", --name.
#include <algorithm>
#include <filesystem>

#include "coffer/restore/restore.hpp"
#include "coffer/restore/source.hpp"
#include "coffer/util/error.hpp"

namespace coffer::restore {
namespace fs = std::filesystem;

std::pair<std::string, std::string> split_snapshot_arg(std::string_view arg) {
  auto colon = arg.find(':');
  if (colon == std::string_view::npos) return {std::string(arg), {}};
  return {std::string(arg.substr(0, colon)), std::string(arg.substr(colon + 1))};
}

std::string normalize_snapshot_path(std::string_view path) {
  std::string out;
  std::size_t pos = 0;
  while (pos <= path.size()) {
    auto slash = path.find('/', pos);
    std::string_view part = path.substr(pos, slash == std::string_view::npos ? slash : slash - pos);
    if (part == "..") fail(ErrorKind::usage, "restore path", path, "'..' is not allowed");
    if (!part.empty() && part != ".") {
      if (!out.empty()) out += '/';
      out += part;
    }
    if (slash == std::string_view::npos) break;
    pos = slash + 1;
  }
  return out;
}

namespace {

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

snapshot::SnapshotInfo pick(const TreeSource& src, const std::string& host, std::string_view when) {
  auto all = src.complete(host);
  std::string where = src.name() + "/hosts/" + host;
  if (all.empty())
    fail(ErrorKind::missing, "find snapshot in", where, "no complete snapshots of " + host);
  if (when == "latest") return all.back();
  for (auto& s : all)
    if (s.name == when) return s;
  fail(ErrorKind::missing, "find snapshot in", where,
       "no complete snapshot named " + std::string(when));
}

}  // namespace

snapshot::SnapshotInfo resolve_snapshot(const fs::path& repo, std::string_view spec,
                                        std::string_view name) {
  if (!fs::is_directory(repo))
    fail(ErrorKind::missing, "open repository", repo.native(), "no such directory");
  return resolve_snapshot(*repository_source(repo), spec, name);
}

snapshot::SnapshotInfo resolve_snapshot(const TreeSource& src, std::string_view spec,
                                        std::string_view name) {
  std::string host(name);
  std::string when(spec);
  if (auto slash = spec.find('/'); slash != std::string_view::npos) {
    std::string from_spec(spec.substr(0, slash));
    if (!host.empty() && host != from_spec)
      fail(ErrorKind::usage, "select snapshot", spec, "--name " + host + " names another source");
    host = from_spec;
    when = spec.substr(slash + 1);
  }
  if (when.empty()) fail(ErrorKind::usage, "select snapshot", spec, "empty snapshot name");
  if (when != "latest" && !snapshot::parse_timestamp(when))
    fail(ErrorKind::usage, "select snapshot", spec,
         "expected latest, a snapshot time (2026-11-26T05-37-42Z), NAME/latest or NAME/TIME");
  if (!host.empty()) {
    if (!snapshot::valid_host_name(host))
      fail(ErrorKind::usage, "select snapshot", host, "not a source name");
    return pick(src, host, when);
  }
  auto hosts = src.hosts();
  if (hosts.empty()) fail(ErrorKind::missing, "find snapshot in", src.name(), "no snapshots");
  if (hosts.size() == 1) return pick(src, hosts.front(), when);
  if (when == "latest")
    fail(ErrorKind::usage, "select snapshot in", src.name(),
         "several sources (" + join(hosts) + "): say NAME/latest or --name NAME");
  std::vector<snapshot::SnapshotInfo> found;
  for (const auto& h : hosts)
    for (auto& s : src.complete(h))
      if (s.name == when) found.push_back(std::move(s));
  if (found.empty())
    fail(ErrorKind::missing, "find snapshot in", src.name(), "no complete snapshot named " + when);
  if (found.size() > 1) {
    std::vector<std::string> names;
    for (const auto& s : found) names.push_back(s.host);
    fail(ErrorKind::usage, "select snapshot in", src.name(),
         when + " exists for several sources (" + join(names) + "): say NAME/" + when);
  }
  return found.front();
}

const char* action_name(Action a) {
  switch (a) {
    case Action::restored:
      return "restored";
    case Action::unchanged:
      return "unchanged";
    case Action::updated:
      return "updated";
    case Action::skipped:
      return "skipped";
    case Action::deleted:
      return "deleted";
  }
  return "restored";
}

}  // namespace coffer::restore
