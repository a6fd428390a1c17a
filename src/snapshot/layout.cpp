#include "coffer/snapshot/layout.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <memory>
#include <nlohmann/json.hpp>

#include "coffer/util/atomic_file.hpp"
#include "coffer/util/error.hpp"
#include "coffer/util/log.hpp"

namespace coffer::snapshot {
namespace fs = std::filesystem;

std::string format_timestamp(std::time_t t) {
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H-%M-%SZ", &tm);
  return buf;
}

std::optional<std::time_t> parse_timestamp(std::string_view name) {
  // Exactly YYYY-MM-DDTHH-MM-SSZ: anything else in a host directory is not a snapshot.
  if (name.size() != 20 || name[4] != '-' || name[7] != '-' || name[10] != 'T' || name[13] != '-' ||
      name[16] != '-' || name[19] != 'Z')
    return std::nullopt;
  auto num = [&](std::size_t pos, std::size_t len) -> int {
    int v = 0;
    for (std::size_t i = pos; i < pos + len; ++i) {
      if (name[i] < '0' || name[i] > '9') return -1;
      v = v * 10 + (name[i] - '0');
    }
    return v;
  };
  std::tm tm{};
  tm.tm_year = num(0, 4) - 1900;
  tm.tm_mon = num(5, 2) - 1;
  tm.tm_mday = num(8, 2);
  tm.tm_hour = num(11, 2);
  tm.tm_min = num(14, 2);
  tm.tm_sec = num(17, 2);
  if (tm.tm_year < 0 || tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
      tm.tm_hour < 0 || tm.tm_hour > 23 || tm.tm_min < 0 || tm.tm_min > 59 || tm.tm_sec < 0 ||
      tm.tm_sec > 60)
    return std::nullopt;
  std::time_t t = ::timegm(&tm);
  if (format_timestamp(t) != name) return std::nullopt;  // rejects 2026-02-31 and the like
  return t;
}

bool valid_host_name(std::string_view name) {
  if (name.empty() || name.size() > 64 || name[0] == '.') return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

std::string marker_to_json(const Marker& m) {
  nlohmann::json j = {{"format", 1},          {"host", m.host},       {"name", m.name},
                      {"source", m.source},   {"started", m.started}, {"finished", m.finished},
                      {"entries", m.entries}, {"bytes", m.bytes},     {"warnings", m.warnings}};
  return j.dump(2) + "\n";
}

Marker marker_from_json(std::string_view text, const fs::path& shown) {
  try {
    auto j = nlohmann::json::parse(text);
    if (j.at("format").get<int>() != 1)
      fail(ErrorKind::failed, "read snapshot marker", shown.native(), "unknown format version");
    Marker m;
    m.host = j.at("host").get<std::string>();
    m.name = j.at("name").get<std::string>();
    m.source = j.value("source", "");
    m.started = j.value("started", std::int64_t{0});
    m.finished = j.value("finished", std::int64_t{0});
    m.entries = j.value("entries", std::uint64_t{0});
    m.bytes = j.value("bytes", std::uint64_t{0});
    m.warnings = j.value("warnings", std::uint64_t{0});
    return m;
  } catch (const nlohmann::json::exception& e) {
    fail(ErrorKind::failed, "read snapshot marker", shown.native(), e.what());
  }
}

std::vector<std::string> list_hosts(const fs::path& repo) {
  std::vector<std::string> hosts;
  std::error_code ec;
  fs::directory_iterator it(repo / "hosts", ec);
  if (ec) {
    if (ec == std::errc::no_such_file_or_directory) return hosts;
    throw_errno("list hosts in", repo / "hosts", ec.value());
  }
  for (const auto& e : it)
    if (e.is_directory() && !e.is_symlink() && valid_host_name(e.path().filename().native()))
      hosts.push_back(e.path().filename());
  std::sort(hosts.begin(), hosts.end());
  return hosts;
}

std::vector<SnapshotInfo> list_complete(const fs::path& repo, std::string_view host) {
  std::vector<SnapshotInfo> out;
  fs::path host_dir = repo / "hosts" / std::string(host);
  std::error_code ec;
  fs::directory_iterator it(host_dir, ec);
  if (ec) {
    if (ec == std::errc::no_such_file_or_directory) return out;
    throw_errno("list snapshots in", host_dir, ec.value());
  }
  for (const auto& e : it) {
    std::string name = e.path().filename();
    auto t = parse_timestamp(name);
    if (!t || e.is_symlink() || !e.is_directory()) continue;
    struct stat st;
    if (::lstat((e.path() / "complete").c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    SnapshotInfo info{std::string(host), name, e.path(), *t, {}};
    info.marker = marker_from_json(read_file(e.path() / "complete"), e.path() / "complete");
    out.push_back(std::move(info));
  }
  std::sort(out.begin(), out.end(),
            [](const SnapshotInfo& a, const SnapshotInfo& b) { return a.name < b.name; });
  return out;
}

std::optional<SnapshotInfo> latest_complete(const fs::path& repo, std::string_view host) {
  auto all = list_complete(repo, host);
  if (all.empty()) return std::nullopt;
  return all.back();
}

void sync_filesystem(const fs::path& path) {
  UniqueFd fd = open_fd(path, O_RDONLY | O_DIRECTORY);
  if (::syncfs(fd.get()) != 0) throw_errno("syncfs", path, errno);
}

namespace {

// Empties directory `fd` (named `shown` in errors) relative to directory fds, so that a tree
// nested deeper than PATH_MAX is removed like any other; symlinks are removed, never followed.
void empty_directory(int fd, const fs::path& shown) {
  ::fchmod(fd, 0700);  // a copied read-only source directory must become writable to be emptied
  int dup = ::dup(fd);
  if (dup < 0) throw_errno("remove", shown, errno);
  std::unique_ptr<DIR, int (*)(DIR*)> d(::fdopendir(dup), ::closedir);
  if (!d) {
    int err = errno;
    ::close(dup);
    throw_errno("remove", shown, err);
  }
  std::vector<std::string> names;
  errno = 0;
  while (dirent* de = ::readdir(d.get())) {
    std::string_view n = de->d_name;
    if (n != "." && n != "..") names.emplace_back(n);
    errno = 0;
  }
  if (errno != 0) throw_errno("remove", shown, errno);
  for (const auto& name : names) {
    if (::unlinkat(fd, name.c_str(), 0) == 0 || errno == ENOENT) continue;
    if (errno != EISDIR) throw_errno("remove", shown / name, errno);
    int sub = ::openat(fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sub < 0) throw_errno("remove", shown / name, errno);
    {
      UniqueFd subfd(sub);
      empty_directory(subfd.get(), shown / name);
    }
    if (::unlinkat(fd, name.c_str(), AT_REMOVEDIR) != 0) throw_errno("remove", shown / name, errno);
  }
}

}  // namespace

void remove_tree(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return;
    if (errno != ENOTDIR && errno != ELOOP) throw_errno("remove", path, errno);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) throw_errno("remove", path, errno);
    return;
  }
  {
    UniqueFd dir(fd);
    empty_directory(dir.get(), path);
  }
  if (::rmdir(path.c_str()) != 0 && errno != ENOENT) throw_errno("remove", path, errno);
}

namespace {

fs::path prepare_host_dir(const fs::path& repo, const std::string& host) {
  if (!valid_host_name(host))
    fail(ErrorKind::usage, "use snapshot name", host,
         "a name is made of letters, digits, '.', '_' and '-' and does not start with '.'");
  struct stat st;
  if (::stat(repo.c_str(), &st) != 0)
    throw_errno("open repository", repo, errno, ErrorKind::missing);
  if (!S_ISDIR(st.st_mode))
    fail(ErrorKind::missing, "open repository", repo.native(), "not a directory");
  fs::path host_dir = repo / "hosts" / host;
  std::error_code ec;
  fs::create_directories(host_dir, ec);
  if (ec) throw_errno("create", host_dir, ec.value());
  return host_dir;
}

void make_dir(const fs::path& p) {
  if (::mkdir(p.c_str(), 0700) != 0 && errno != EEXIST) throw_errno("create directory", p, errno);
}

}  // namespace

InProgress::InProgress(const fs::path& repo, std::string host, std::string source)
    : repo_(repo),
      host_(std::move(host)),
      host_dir_(prepare_host_dir(repo, host_)),
      dir_(host_dir_ / ".in-progress"),
      lock_(host_dir_ / ".lock") {
  started_ = std::time(nullptr);
  struct stat st;
  if (::lstat((dir_ / "complete").c_str(), &st) == 0) {
    // A crash between the marker and the rename: the snapshot is whole, publish it first.
    Marker m = marker_from_json(read_file(dir_ / "complete"), dir_ / "complete");
    log::info("publishing snapshot {} of {} completed by an interrupted run", m.name, host_);
    publish(m);
  }
  if (::lstat(dir_.c_str(), &st) == 0) {
    resumed_ = true;
    fs::path tree = dir_ / "tree";
    fs::path base = dir_ / "resume-base";
    if (::lstat(tree.c_str(), &st) == 0) {
      // The newest partial tree already holds what the older one had (it linked from it).
      if (::lstat(base.c_str(), &st) == 0) remove_tree(base);
      if (::rename(tree.c_str(), base.c_str()) != 0) throw_errno("rename", tree, errno);
    }
    if (::lstat(staging().c_str(), &st) == 0) remove_tree(staging());
    ::unlink(catalog().c_str());
    log::info("resuming the interrupted snapshot of {}", host_);
  } else {
    make_dir(dir_);
  }
  make_dir(tree());
  make_dir(staging());
  write_file_atomic(dir_ / "state",
                    "{\"format\":1,\"source\":" + nlohmann::json(source).dump() +
                        ",\"started\":" + std::to_string(started_) + "}\n",
                    0600);
}

std::optional<fs::path> InProgress::resume_base() const {
  struct stat st;
  fs::path base = dir_ / "resume-base";
  if (::lstat(base.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return base;
  return std::nullopt;
}

SnapshotInfo InProgress::publish(Marker marker) {
  marker.host = host_;
  struct stat st;
  if (marker.name.empty()) {
    // The start time names the snapshot; a second run within the same second takes the next one.
    std::time_t t = started_;
    while (::lstat((host_dir_ / format_timestamp(t)).c_str(), &st) == 0) ++t;
    marker.name = format_timestamp(t);
  }
  if (auto base = resume_base()) remove_tree(*base);
  if (::lstat(staging().c_str(), &st) == 0) remove_tree(staging());
  ::unlink((dir_ / "state").c_str());
  // One flush of the file system instead of an fsync per file; the marker comes after it, so a
  // marker on disk always means that everything it describes is on disk too.
  sync_filesystem(dir_);
  write_file_atomic(dir_ / "complete", marker_to_json(marker), 0644);
  fs::path final_dir = host_dir_ / marker.name;
  if (::rename(dir_.c_str(), final_dir.c_str()) != 0) throw_errno("rename", dir_, errno);
  fsync_dir(host_dir_);
  fs::path tmp_link = host_dir_ / ".latest.tmp";
  ::unlink(tmp_link.c_str());
  if (::symlink(marker.name.c_str(), tmp_link.c_str()) != 0) throw_errno("create", tmp_link, errno);
  if (::rename(tmp_link.c_str(), (host_dir_ / "latest").c_str()) != 0)
    throw_errno("rename", tmp_link, errno);
  fsync_dir(host_dir_);
  SnapshotInfo info{host_, marker.name, final_dir, *parse_timestamp(marker.name), marker};
  return info;
}

}  // namespace coffer::snapshot
