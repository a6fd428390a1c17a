#include "walker.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include "coffer/util/error.hpp"
#include "coffer/util/fd.hpp"
#include "coffer/util/signals.hpp"
#include "metadata.hpp"

namespace coffer::transfer {
namespace fs = std::filesystem;

Walker::Walker(fs::path root, const WalkOptions& options, EntrySink on_entry,
               WarningSink on_warning)
    : root_(std::move(root)),
      options_(options),
      on_entry_(std::move(on_entry)),
      on_warning_(std::move(on_warning)) {}

namespace {

std::string join(const std::string& dir, std::string_view name) {
  if (dir.empty()) return std::string(name);
  std::string p;
  p.reserve(dir.size() + 1 + name.size());
  p += dir;
  p += '/';
  p += name;
  return p;
}

struct DirCloser {
  void operator()(DIR* d) const noexcept { ::closedir(d); }
};

FileEntry entry_from_stat(std::string path, const struct stat& st) {
  FileEntry e;
  e.path = std::move(path);
  e.type = *snapshot::entry_type_from_mode(st.st_mode);
  e.mode = st.st_mode & 07777;
  e.uid = st.st_uid;
  e.gid = st.st_gid;
  e.mtime_sec = st.st_mtim.tv_sec;
  e.mtime_nsec = static_cast<std::uint32_t>(st.st_mtim.tv_nsec);
  if (e.type == EntryType::regular) {
    e.size = static_cast<std::uint64_t>(st.st_size);
    e.sparse = st.st_size > 0 && static_cast<std::uint64_t>(st.st_blocks) * 512 <
                                     static_cast<std::uint64_t>(st.st_size);
  }
  if (e.type == EntryType::char_device || e.type == EntryType::block_device) e.rdev = st.st_rdev;
  return e;
}

}  // namespace

std::vector<std::string> Walker::read_names(int dirfd, const std::string& shown, bool root) {
  UniqueFd fd(::dup(dirfd));
  if (!fd) throw_errno("read directory", shown, errno);
  // The stream owns the descriptor once fdopendir succeeds; closedir releases both.
  std::unique_ptr<DIR, DirCloser> d(::fdopendir(fd.get()));
  if (!d) throw_errno("read directory", shown, errno);
  (void)fd.release();
  std::vector<std::string> names;
  errno = 0;
  while (dirent* de = ::readdir(d.get())) {
    std::string_view n = de->d_name;
    if (n != "." && n != "..") names.emplace_back(n);
    errno = 0;
  }
  int err = errno;
  d.reset();
  if (err != 0) {
    if (root) throw_errno("read source root", shown, err);
    on_warning_(shown, std::string("cannot read directory: ") + std::strerror(err));
  }
  std::sort(names.begin(), names.end());
  return names;
}

void Walker::emit(FileEntry&& e, const struct stat& st) {
  if (e.type != EntryType::directory && st.st_nlink > 1) {
    // Key by inode, and by device too when the walk may cross file systems.
    std::uint64_t key = static_cast<std::uint64_t>(st.st_ino);
    if (st.st_dev != root_dev_)
      key ^= static_cast<std::uint64_t>(st.st_dev) * 0x9e3779b97f4a7c15ull;
    auto [it, fresh] = inode_leaders_.try_emplace(key, next_index_);
    if (!fresh) e.leader = it->second;
  }
  ++next_index_;
  on_entry_(std::move(e), SourceIdentity{st.st_dev, st.st_ino});
}

void Walker::run() {
  int fd = ::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw_errno("open source root", root_, errno);
  UniqueFd root(fd);
  struct stat st;
  if (::fstat(root.get(), &st) != 0) throw_errno("stat source root", root_, errno);
  root_dev_ = st.st_dev;
  auto names = read_names(root.get(), root_.native(), true);
  if (names.empty())
    fail(ErrorKind::failed, "read source root", root_.native(),
         "the directory is empty (not mounted?); no snapshot is made of an empty source");
  FileEntry e = entry_from_stat("", st);
  e.xattrs = read_xattrs_fd(root.get());
  emit(std::move(e), st);
  walk_dir(root.get(), "", std::move(names));
  // Filters (or entries that vanished or could not be read) that leave only the root are an
  // empty source too: `--exclude '*'` must not publish an empty snapshot as complete.
  if (next_index_ == 1)
    fail(ErrorKind::failed, "read source root", root_.native(),
         "every entry is excluded or unreadable; no snapshot is made of an empty source");
}

void Walker::walk_dir(int dirfd, const std::string& dir_path, std::vector<std::string> names) {
  for (const auto& name : names) {
    check_interrupted("walking the source");
    std::string path = join(dir_path, name);
    struct stat st;
    if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) {
        on_warning_(path, "vanished before it could be listed");
        continue;
      }
      on_warning_(path, std::string("cannot stat: ") + std::strerror(errno));
      continue;
    }
    bool is_dir = S_ISDIR(st.st_mode);
    if (options_.filter.excluded(path, is_dir)) continue;
    if (!snapshot::entry_type_from_mode(st.st_mode)) {
      on_warning_(path, "unknown file type, skipped");
      continue;
    }
    FileEntry e = entry_from_stat(path, st);
    try {
      e.xattrs = read_xattrs_at(dirfd, name);
    } catch (const Error& err) {
      on_warning_(path, err.what());
    }
    if (e.type == EntryType::symlink) {
      std::string target(static_cast<std::size_t>(st.st_size) + 1, '\0');
      for (;;) {
        ssize_t n = ::readlinkat(dirfd, name.c_str(), target.data(), target.size());
        if (n < 0) {
          on_warning_(path, std::string("cannot read symlink: ") + std::strerror(errno));
          target.clear();
          break;
        }
        if (static_cast<std::size_t>(n) < target.size()) {
          target.resize(static_cast<std::size_t>(n));
          break;
        }
        target.resize(target.size() * 2);
      }
      e.link_target = std::move(target);
      e.size = e.link_target.size();
    }
    emit(std::move(e), st);
    if (!is_dir) continue;
    if (options_.one_file_system && st.st_dev != root_dev_) continue;  // a mount point: kept empty
    int sub = ::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sub < 0) {
      on_warning_(path, std::string("cannot open directory: ") + std::strerror(errno));
      continue;
    }
    UniqueFd subfd(sub);
    walk_dir(subfd.get(), path, read_names(subfd.get(), path, false));
  }
}

}  // namespace coffer::transfer
