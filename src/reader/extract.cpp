// A minimal restore out of the image: reader::FileSystem -> a new directory tree. Everything
// is created with O_EXCL / *at() calls under directory fds this code made itself, so a name
// from the image can never lead outside the temporary tree; the tree gets its final name by
// one rename at the end.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <map>
#include <string>
#include <vector>

#include "coffer/reader/extract.hpp"
#include "coffer/util/error.hpp"
#include "coffer/util/fd.hpp"

namespace coffer::reader {
namespace {

constexpr std::size_t kChunk = 1 << 20;

class Extractor {
 public:
  Extractor(const FileSystem& fs, std::filesystem::path shown_root)
      : fs_(fs), shown_root_(std::move(shown_root)), as_root_(::geteuid() == 0) {}

  ExtractReport report;

  // Creates entry `name` in `parent` (a directory fd) from inode `st`; `rel` for messages.
  void entry(int parent, const std::string& name, const Stat& st, const std::string& rel) {
    std::filesystem::path shown = shown_root_ / rel;
    ++report.entries;
    if (st.nlink > 1 && !S_ISDIR(st.mode)) {
      auto it = links_.find(st.ino);
      if (it != links_.end()) {
        if (::linkat(it->second.first, it->second.second.c_str(), parent, name.c_str(), 0) != 0)
          throw_errno("link", shown, errno);
        ++report.hard_links;
        return;
      }
    }
    if (S_ISDIR(st.mode)) {
      if (::mkdirat(parent, name.c_str(), 0700) != 0) throw_errno("create directory", shown, errno);
      UniqueFd dir(::openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!dir) throw_errno("open directory", shown, errno);
      for (const auto& e : fs_.list(st.ino))
        entry(dir.get(), e.name, fs_.stat(e.ino), rel.empty() ? e.name : rel + "/" + e.name);
      finish(dir.get(), st, shown);
      return;
    }
    if (S_ISREG(st.mode)) {
      UniqueFd f(::openat(parent, name.c_str(),
                          O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
      if (!f) throw_errno("create", shown, errno);
      copy_data(f.get(), st, shown);
      finish(f.get(), st, shown);
      ++report.files;
    } else if (S_ISLNK(st.mode)) {
      std::string target = fs_.readlink(st.ino);
      if (::symlinkat(target.c_str(), parent, name.c_str()) != 0)
        throw_errno("create symlink", shown, errno);
      if (as_root_ && ::fchownat(parent, name.c_str(), st.uid, st.gid, AT_SYMLINK_NOFOLLOW) != 0)
        throw_errno("set owner of", shown, errno);
      timespec times[2] = {st.atime, st.mtime};
      if (::utimensat(parent, name.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0)
        throw_errno("set times of", shown, errno);
    } else {
      // fifo, socket, char/block device: devices need root (CAP_MKNOD).
      if (::mknodat(parent, name.c_str(), (st.mode & S_IFMT) | 0600, st.rdev) != 0) {
        if (errno != EPERM || as_root_) throw_errno("create node", shown, errno);
        warn(shown.native() + ": device node not created (needs root)");
        return;
      }
      UniqueFd f(::openat(parent, name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
      if (!f) throw_errno("open", shown, errno);
      if (as_root_ && ::fchownat(f.get(), "", st.uid, st.gid, AT_EMPTY_PATH) != 0)
        throw_errno("set owner of", shown, errno);
      if (::fchmodat(parent, name.c_str(), st.mode & 07777, 0) != 0)
        throw_errno("set mode of", shown, errno);
      timespec times[2] = {st.atime, st.mtime};
      if (::utimensat(parent, name.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0)
        throw_errno("set times of", shown, errno);
    }
    if (st.nlink > 1) {
      UniqueFd dup(::fcntl(parent, F_DUPFD_CLOEXEC, 0));
      if (!dup) throw_errno("keep directory for links", shown, errno);
      int fd = dup.get();
      kept_.push_back(std::move(dup));
      links_[st.ino] = {fd, name};
    }
  }

 private:
  void warn(std::string line) {
    ++report.warnings;
    report.warning_lines.push_back(std::move(line));
  }

  // Writes only the mapped runs, so the holes of a sparse file stay holes.
  void copy_data(int fd, const Stat& st, const std::filesystem::path& shown) {
    std::vector<std::byte> buf(kChunk);
    for (const Extent& e : fs_.extents(st.ino)) {
      for (std::uint64_t at = e.offset; at < e.offset + e.length;) {
        std::size_t want =
            static_cast<std::size_t>(std::min<std::uint64_t>(kChunk, e.offset + e.length - at));
        std::size_t got = fs_.read(st.ino, at, {buf.data(), want});
        if (got != want)
          fail(ErrorKind::failed, "read", shown.native(), "short read from the image");
        pwrite_all(fd, {buf.data(), got}, static_cast<off_t>(at), shown);
        at += got;
        report.bytes += got;
      }
    }
    if (::ftruncate(fd, static_cast<off_t>(st.size)) != 0) throw_errno("set size of", shown, errno);
  }

  // Metadata last (after the content, and for a directory after its entries), owner before
  // mode so set-id bits survive.
  void finish(int fd, const Stat& st, const std::filesystem::path& shown) {
    for (const auto& [key, value] : fs_.xattrs(st.ino)) {
      if (::fsetxattr(fd, key.c_str(), value.data(), value.size(), 0) != 0) {
        if (as_root_ || (errno != EPERM && errno != ENOTSUP))
          throw_errno("set xattr " + key + " on", shown, errno);
        warn(shown.native() + ": xattr " + key + " not set (needs root)");
      }
    }
    if (as_root_ && ::fchown(fd, st.uid, st.gid) != 0) throw_errno("set owner of", shown, errno);
    if (::fchmod(fd, st.mode & 07777) != 0) throw_errno("set mode of", shown, errno);
    timespec times[2] = {st.atime, st.mtime};
    if (::futimens(fd, times) != 0) throw_errno("set times of", shown, errno);
  }

  const FileSystem& fs_;
  std::filesystem::path shown_root_;
  bool as_root_;
  std::map<std::uint32_t, std::pair<int, std::string>> links_;  // inode -> (dir fd, name)
  std::vector<UniqueFd> kept_;
};

}  // namespace

ExtractReport extract(const FileSystem& fs, const std::string& path,
                      const std::filesystem::path& target) {
  std::error_code ec;
  if (std::filesystem::symlink_status(target, ec).type() != std::filesystem::file_type::not_found)
    fail(ErrorKind::usage, "restore into", target.native(), "exists; give a new path");
  std::filesystem::path parent = target.parent_path().empty() ? "." : target.parent_path();
  UniqueFd dir = open_fd(parent, O_RDONLY | O_DIRECTORY);
  std::string temp =
      "." + target.filename().native() + ".coffer-partial-" + std::to_string(::getpid());
  Extractor x(fs, target);
  Stat st = fs.stat(fs.lookup(path));
  try {
    x.entry(dir.get(), temp, st, "");
  } catch (...) {
    std::filesystem::remove_all(parent / temp, ec);  // nothing half-made under the final name
    throw;
  }
  // Content and metadata reach the disk before the tree appears under its final name.
  if (::syncfs(dir.get()) != 0) throw_errno("sync", parent, errno);
  if (::renameat2(dir.get(), temp.c_str(), dir.get(), target.filename().c_str(),
                  RENAME_NOREPLACE) != 0) {
    int err = errno;
    std::filesystem::remove_all(parent / temp, ec);
    throw_errno("rename into place", target, err);
  }
  if (::fsync(dir.get()) != 0) throw_errno("sync", parent, errno);
  return x.report;
}

}  // namespace coffer::reader
