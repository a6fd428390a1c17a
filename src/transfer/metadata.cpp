#include "metadata.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "coffer/util/error.hpp"
#include "coffer/util/log.hpp"

namespace coffer::transfer {

std::string proc_path(int dirfd, std::string_view name) {
  std::string p = "/proc/self/fd/" + std::to_string(dirfd) + "/";
  p += name;
  return p;
}

namespace {

bool no_xattr_support(int err) {
  return err == ENOTSUP || err == ENOSYS;
}

// list/get through function objects so that the path and fd forms share one loop.
template <typename List, typename Get>
Xattrs read_xattrs(List list, Get get, const std::string& shown) {
  Xattrs out;
  std::vector<char> names(1024);
  ssize_t n;
  for (;;) {
    n = list(names.data(), names.size());
    if (n >= 0) break;
    if (errno == ERANGE) {
      names.resize(names.size() * 4);
      continue;
    }
    if (no_xattr_support(errno)) return out;
    throw_errno("list xattrs of", shown, errno);
  }
  std::vector<char> value(256);
  for (ssize_t pos = 0; pos < n;) {
    const char* name = names.data() + pos;
    std::size_t len = std::strlen(name);
    pos += static_cast<ssize_t>(len) + 1;
    ssize_t v;
    for (;;) {
      v = get(name, value.data(), value.size());
      if (v >= 0) break;
      if (errno == ERANGE) {
        value.resize(value.size() * 4);
        continue;
      }
      if (errno == ENODATA) break;  // removed since the listing
      throw_errno("read xattr " + std::string(name) + " of", shown, errno);
    }
    if (v < 0) continue;
    out.emplace_back(std::string(name, len),
                     std::string(value.data(), static_cast<std::size_t>(v)));
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

Xattrs read_xattrs_at(int dirfd, std::string_view name) {
  std::string p = proc_path(dirfd, name);
  return read_xattrs(
      [&](char* b, std::size_t s) { return ::llistxattr(p.c_str(), b, s); },
      [&](const char* n, char* b, std::size_t s) { return ::lgetxattr(p.c_str(), n, b, s); },
      std::string(name));
}

Xattrs read_xattrs_fd(int fd) {
  return read_xattrs(
      [&](char* b, std::size_t s) { return ::flistxattr(fd, b, s); },
      [&](const char* n, char* b, std::size_t s) { return ::fgetxattr(fd, n, b, s); },
      "fd " + std::to_string(fd));
}

namespace {
EntryMetadata metadata_of(const FileEntry& e) {
  return {e.type, e.mode, e.uid, e.gid, e.mtime_sec, e.mtime_nsec, &e.xattrs};
}
}  // namespace

void MetadataApplier::chown_failed(int err, const std::filesystem::path& shown) {
  if (err != EPERM) throw_errno("change owner of", shown, err);
  can_chown = false;
  if (warn_once && !warned_chown) {
    warned_chown = true;
    log::warn("not running as root: owners are not kept (first refusal: {})", shown.native());
  }
}

void MetadataApplier::skipped_owner(const EntryMetadata& m) {
  static const uid_t euid = ::geteuid();
  static const gid_t egid = ::getegid();
  if (m.uid != euid || m.gid != egid) ++chown_skipped;
}

void MetadataApplier::apply_fd(int fd, const EntryMetadata& m, const std::filesystem::path& shown) {
  if (can_chown && ::fchown(fd, m.uid, m.gid) != 0) chown_failed(errno, shown);
  if (!can_chown) skipped_owner(m);
  if (m.xattrs)
    for (const auto& [name, value] : *m.xattrs)
      if (::fsetxattr(fd, name.c_str(), value.data(), value.size(), 0) != 0)
        throw_errno("set xattr " + name + " on", shown, errno);
  if (::fchmod(fd, m.mode) != 0) throw_errno("change mode of", shown, errno);
  timespec times[2] = {{0, UTIME_OMIT}, {m.mtime_sec, static_cast<long>(m.mtime_nsec)}};
  if (::futimens(fd, times) != 0) throw_errno("set times of", shown, errno);
}

void MetadataApplier::apply_at(int dirfd, std::string_view name, const EntryMetadata& m,
                               const std::filesystem::path& shown) {
  std::string n(name);
  if (can_chown && ::fchownat(dirfd, n.c_str(), m.uid, m.gid, AT_SYMLINK_NOFOLLOW) != 0)
    chown_failed(errno, shown);
  if (!can_chown) skipped_owner(m);
  if (m.xattrs && !m.xattrs->empty()) {
    std::string p = proc_path(dirfd, name);
    for (const auto& [xname, value] : *m.xattrs)
      if (::lsetxattr(p.c_str(), xname.c_str(), value.data(), value.size(), 0) != 0)
        throw_errno("set xattr " + xname + " on", shown, errno);
  }
  // Symlinks have no mode of their own; for the rest the name was just created by us.
  if (m.type != EntryType::symlink && ::fchmodat(dirfd, n.c_str(), m.mode, 0) != 0)
    throw_errno("change mode of", shown, errno);
  timespec times[2] = {{0, UTIME_OMIT}, {m.mtime_sec, static_cast<long>(m.mtime_nsec)}};
  if (::utimensat(dirfd, n.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0)
    throw_errno("set times of", shown, errno);
}

void MetadataApplier::apply_fd(int fd, const FileEntry& e, const std::filesystem::path& shown) {
  apply_fd(fd, metadata_of(e), shown);
}

void MetadataApplier::apply_at(int dirfd, std::string_view name, const FileEntry& e,
                               const std::filesystem::path& shown) {
  apply_at(dirfd, name, metadata_of(e), shown);
}

}  // namespace coffer::transfer
