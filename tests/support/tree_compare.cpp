#include "tree_compare.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <map>
#include <set>

#include "file_hash.hpp"

namespace fs = std::filesystem;

namespace coffer::test {
namespace {

std::string shown(const std::string& rel) {
  std::string out;
  for (unsigned char c : rel) {
    if (c >= 0x20 && c < 0x7f && c != '\\')
      out += static_cast<char>(c);
    else
      out += fmt::format("\\x{:02x}", c);
  }
  return rel.empty() ? "." : out;
}

void walk(const fs::path& root, const std::string& rel, std::vector<std::string>& out) {
  fs::path dir = rel.empty() ? root : root / rel;
  std::error_code ec;
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir, ec)) names.push_back(e.path().filename());
  std::sort(names.begin(), names.end());
  for (const auto& n : names) {
    std::string child = rel.empty() ? n : rel + "/" + n;
    out.push_back(child);
    struct stat st;
    if (::lstat((root / child).c_str(), &st) == 0 && S_ISDIR(st.st_mode)) walk(root, child, out);
  }
}

std::map<std::string, std::string> xattrs(const fs::path& p) {
  std::map<std::string, std::string> out;
  std::vector<char> names(65536);
  ssize_t n = ::llistxattr(p.c_str(), names.data(), names.size());
  if (n <= 0) return out;
  for (ssize_t pos = 0; pos < n;) {
    std::string name(names.data() + pos);
    pos += static_cast<ssize_t>(name.size()) + 1;
    std::vector<char> value(65536);
    ssize_t v = ::lgetxattr(p.c_str(), name.c_str(), value.data(), value.size());
    out[name] =
        v < 0 ? std::string("<error>") : std::string(value.data(), static_cast<std::size_t>(v));
  }
  return out;
}

// Data extents as (start, end) pairs.
std::vector<std::pair<off_t, off_t>> data_map(const fs::path& p) {
  std::vector<std::pair<off_t, off_t>> out;
  int fd = ::open(p.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return out;
  off_t pos = 0;
  for (;;) {
    off_t data = ::lseek(fd, pos, SEEK_DATA);
    if (data < 0) break;
    off_t hole = ::lseek(fd, data, SEEK_HOLE);
    if (hole < 0) break;
    out.emplace_back(data, hole);
    pos = hole;
  }
  ::close(fd);
  return out;
}

std::string type_name(mode_t m) {
  switch (m & S_IFMT) {
    case S_IFREG:
      return "file";
    case S_IFDIR:
      return "directory";
    case S_IFLNK:
      return "symlink";
    case S_IFIFO:
      return "fifo";
    case S_IFSOCK:
      return "socket";
    case S_IFCHR:
      return "char device";
    case S_IFBLK:
      return "block device";
  }
  return "unknown";
}

void compare_entry(const fs::path& ep, const fs::path& ap, const std::string& rel,
                   const CompareOptions& o, std::vector<std::string>& diffs) {
  struct stat e, a;
  if (::lstat(ep.c_str(), &e) != 0 || ::lstat(ap.c_str(), &a) != 0) {
    diffs.push_back(shown(rel) + ": cannot stat");
    return;
  }
  auto diff = [&](const std::string& what, const std::string& x, const std::string& y) {
    if (x != y) diffs.push_back(fmt::format("{}: {} {} != {}", shown(rel), what, x, y));
  };
  diff("type", type_name(e.st_mode), type_name(a.st_mode));
  if ((e.st_mode & S_IFMT) != (a.st_mode & S_IFMT)) return;
  if (!S_ISLNK(e.st_mode))
    diff("mode", fmt::format("{:04o}", e.st_mode & 07777),
         fmt::format("{:04o}", a.st_mode & 07777));
  if (o.owners) {
    diff("uid", std::to_string(e.st_uid), std::to_string(a.st_uid));
    diff("gid", std::to_string(e.st_gid), std::to_string(a.st_gid));
  }
  diff("mtime", fmt::format("{}.{:09}", e.st_mtim.tv_sec, e.st_mtim.tv_nsec),
       fmt::format("{}.{:09}", a.st_mtim.tv_sec, a.st_mtim.tv_nsec));
  if (!S_ISDIR(e.st_mode)) diff("size", std::to_string(e.st_size), std::to_string(a.st_size));
  if (S_ISREG(e.st_mode)) {
    diff("content", hash_file(ep), hash_file(ap));
    bool sparse = static_cast<off_t>(e.st_blocks) * 512 < e.st_size;
    if (o.holes && sparse) {
      auto em = data_map(ep), am = data_map(ap);
      std::string es, as;
      for (auto [s, t] : em) es += fmt::format("[{},{})", s, t);
      for (auto [s, t] : am) as += fmt::format("[{},{})", s, t);
      diff("data extents", es, as);
    }
  }
  if (S_ISLNK(e.st_mode)) {
    diff("target", fs::read_symlink(ep).native(), fs::read_symlink(ap).native());
  }
  if (S_ISCHR(e.st_mode) || S_ISBLK(e.st_mode))
    diff("rdev", fmt::format("{}:{}", major(e.st_rdev), minor(e.st_rdev)),
         fmt::format("{}:{}", major(a.st_rdev), minor(a.st_rdev)));
  auto ex = xattrs(ep), ax = xattrs(ap);
  std::string es, as;
  for (const auto& [k, v] : ex) es += k + "=" + shown(v) + ";";
  for (const auto& [k, v] : ax) as += k + "=" + shown(v) + ";";
  diff("xattrs", es, as);
}

}  // namespace

std::vector<std::string> list_tree(const fs::path& root) {
  std::vector<std::string> out;
  walk(root, "", out);
  return out;
}

std::vector<std::string> compare_trees(const fs::path& expected, const fs::path& actual,
                                       const CompareOptions& o) {
  std::vector<std::string> diffs;
  auto ev = list_tree(expected), av = list_tree(actual);
  std::set<std::string> es(ev.begin(), ev.end()), as(av.begin(), av.end());
  for (const auto& p : ev)
    if (!as.count(p)) diffs.push_back(shown(p) + ": missing");
  for (const auto& p : av)
    if (!es.count(p)) diffs.push_back(shown(p) + ": unexpected");
  if (o.root_metadata) compare_entry(expected, actual, "", o, diffs);
  // Hard links: the names sharing an inode must be the same on both sides.
  std::map<std::pair<dev_t, ino_t>, std::vector<std::string>> egroups, agroups;
  for (const auto& p : ev) {
    if (!as.count(p)) continue;
    compare_entry(expected / p, actual / p, p, o, diffs);
    struct stat e, a;
    if (::lstat((expected / p).c_str(), &e) == 0 && !S_ISDIR(e.st_mode) && e.st_nlink > 1)
      egroups[{e.st_dev, e.st_ino}].push_back(p);
    if (::lstat((actual / p).c_str(), &a) == 0 && !S_ISDIR(a.st_mode))
      agroups[{a.st_dev, a.st_ino}].push_back(p);
  }
  std::set<std::vector<std::string>> actual_groups;
  for (auto& [k, v] : agroups) actual_groups.insert(v);
  for (auto& [k, v] : egroups) {
    if (!actual_groups.count(v)) {
      std::string names;
      for (const auto& n : v) names += shown(n) + " ";
      diffs.push_back("hard link group not kept: " + names);
    }
  }
  for (auto& [k, v] : agroups) {
    if (v.size() < 2) continue;
    bool known = false;
    for (auto& [ek, evv] : egroups) known = known || evv == v;
    if (!known) {
      std::string names;
      for (const auto& n : v) names += shown(n) + " ";
      diffs.push_back("names share an inode that do not in the source: " + names);
    }
  }
  return diffs;
}

}  // namespace coffer::test
