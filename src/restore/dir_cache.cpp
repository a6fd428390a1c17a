#include "dir_cache.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>
#include <vector>

#include "coffer/transfer/tree_ops.hpp"
#include "coffer/util/error.hpp"

namespace coffer::restore {

constexpr int kDirFlags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW;

std::filesystem::path DirCache::shown(std::string_view rel) const {
  return rel.empty() ? shown_ : shown_ / std::string(rel);
}

int DirCache::get(std::string_view dir) {
  for (auto& s : slots_)
    if (s.fd && s.path == dir) return s.fd.get();
  int fd = transfer::open_beneath(root_, std::string(dir), kDirFlags);
  if (fd < 0) return fd;
  Slot& slot = slots_[next_];
  next_ = (next_ + 1) % slots_.size();
  slot.path = dir;
  slot.fd.reset(fd);
  return fd;
}

int DirCache::require(std::string_view dir) {
  int fd = get(dir);
  if (fd < 0) throw_errno("open directory", shown(dir), -fd);
  return fd;
}

void DirCache::forget(std::string_view dir) {
  for (auto& s : slots_) {
    bool below = s.path.size() > dir.size() && s.path.compare(0, dir.size(), dir) == 0 &&
                 (dir.empty() || s.path[dir.size()] == '/');
    if (s.fd && (s.path == dir || below)) s.fd.reset();
  }
}

void DirCache::clear() {
  for (auto& s : slots_) s.fd.reset();
}

int remove_beneath(int dirfd, const std::string& name) {
  struct stat st;
  if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return errno;
  if (!S_ISDIR(st.st_mode)) return ::unlinkat(dirfd, name.c_str(), 0) == 0 ? 0 : errno;
  int fd = ::openat(dirfd, name.c_str(), kDirFlags | O_CLOEXEC);
  if (fd < 0) return errno;
  // A read-only directory (copied from a source) must become writable to be emptied.
  ::fchmod(fd, 0700);
  DIR* d = ::fdopendir(fd);
  if (!d) {
    int err = errno;
    ::close(fd);
    return err;
  }
  std::vector<std::string> names;
  while (dirent* de = ::readdir(d)) {
    std::string n = de->d_name;
    if (n != "." && n != "..") names.push_back(std::move(n));
  }
  int err = 0;
  for (const auto& n : names)
    if (int e = remove_beneath(::dirfd(d), n); e != 0 && err == 0) err = e;
  ::closedir(d);
  if (err != 0) return err;
  return ::unlinkat(dirfd, name.c_str(), AT_REMOVEDIR) == 0 ? 0 : errno;
}

}  // namespace coffer::restore
