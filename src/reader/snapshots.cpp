// Finding snapshots (docs/snapshots.md's layout) inside the image's file system.
#include <sys/stat.h>

#include <algorithm>

#include "coffer/reader/extract.hpp"
#include "coffer/snapshot/layout.hpp"
#include "coffer/util/error.hpp"

namespace coffer::reader {

std::pair<std::string, std::string> split_snapshot_arg(const std::string& arg) {
  auto colon = arg.find(':');
  if (colon == std::string::npos) return {arg, ""};
  return {arg.substr(0, colon), arg.substr(colon + 1)};
}

SnapshotRef resolve_snapshot(const FileSystem& fs, const std::string& spec,
                             const std::string& host_opt) {
  std::string host = host_opt, which = spec;
  if (auto slash = spec.find('/'); slash != std::string::npos) {
    host = spec.substr(0, slash);
    which = spec.substr(slash + 1);
  }
  if (host.empty()) {
    if (!fs.exists("hosts"))
      fail(ErrorKind::missing, "find snapshots in", "hosts", "the image holds no snapshots");
    std::vector<std::string> hosts;
    for (const auto& e : fs.list(fs.lookup("hosts")))
      if (snapshot::valid_host_name(e.name)) hosts.push_back(e.name);
    if (hosts.empty())
      fail(ErrorKind::missing, "find snapshots in", "hosts", "the image holds no snapshots");
    if (hosts.size() > 1) {
      std::sort(hosts.begin(), hosts.end());
      std::string names;
      for (const auto& h : hosts) names += (names.empty() ? "" : ", ") + h;
      fail(ErrorKind::usage, "choose snapshot", spec,
           "the image holds several sources (" + names + "): give NAME/" + which + " or --name");
    }
    host = hosts.front();
  }
  if (!snapshot::valid_host_name(host))
    fail(ErrorKind::usage, "choose snapshot", spec, "bad source name");
  std::string hostdir = "hosts/" + host;
  if (!fs.exists(hostdir))
    fail(ErrorKind::missing, "find snapshots of", host, "no such source in the image");
  if (which == "latest") {
    std::string link = hostdir + "/latest";
    if (!fs.exists(link))
      fail(ErrorKind::missing, "find the latest snapshot of", host, "none is complete");
    std::uint32_t ino = fs.lookup(link);
    if (!S_ISLNK(fs.stat(ino).mode)) fail(ErrorKind::failed, "read", link, "not a symlink");
    which = fs.readlink(ino);
  }
  if (!snapshot::parse_timestamp(which))
    fail(ErrorKind::usage, "choose snapshot", spec,
         "expected latest or a time like 2026-11-26T05-37-42Z");
  std::string dir = hostdir + "/" + which;
  if (!fs.exists(dir + "/complete"))
    fail(ErrorKind::missing, "find snapshot", host + "/" + which,
         "no complete snapshot of that name");
  return {host, which, dir + "/tree"};
}

void walk(const FileSystem& fs, const std::string& path, bool recursive,
          const std::function<void(const std::string&, const Stat&)>& visit) {
  Stat top = fs.stat(fs.lookup(path));
  if (!S_ISDIR(top.mode)) {
    visit("", top);
    return;
  }
  std::function<void(std::uint32_t, const std::string&)> go = [&](std::uint32_t dir,
                                                                  const std::string& rel) {
    for (const auto& e : fs.list(dir)) {
      std::string child = rel.empty() ? e.name : rel + "/" + e.name;
      Stat st = fs.stat(e.ino);
      visit(child, st);
      if (recursive && S_ISDIR(st.mode)) go(e.ino, child);
    }
  };
  go(top.ino, "");
}

}  // namespace coffer::reader
