#include "open_beneath.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <cerrno>
#include <climits>

namespace coffer::transfer {
namespace {

int open_once(int dirfd, const char* path, int flags, mode_t mode) noexcept {
  open_how how{};
  how.flags = static_cast<std::uint64_t>(flags | O_CLOEXEC);
  how.mode = (flags & O_CREAT) ? mode : 0;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  for (;;) {
    long fd = ::syscall(SYS_openat2, dirfd, path, &how, sizeof how);
    if (fd >= 0) return static_cast<int>(fd);
    if (errno == EINTR || errno == EAGAIN) continue;  // EAGAIN: a concurrent rename; retry
    return -errno;
  }
}

}  // namespace

int open_beneath(int rootfd, const std::string& path, int flags, mode_t mode) noexcept {
  if (path.size() < PATH_MAX)
    return open_once(rootfd, path.empty() ? "." : path.c_str(), flags, mode);
  // A source may nest deeper than PATH_MAX, which no single path can name: walk down in pieces
  // shorter than PATH_MAX, each opened beneath the directory the previous piece reached, so the
  // whole path is still resolved beneath `rootfd` without symlinks.
  int dir = rootfd, owned = -1;
  std::size_t start = 0;
  while (path.size() - start >= PATH_MAX) {
    std::size_t cut = path.rfind('/', start + PATH_MAX - 1);
    if (cut == std::string::npos || cut <= start) {
      if (owned >= 0) ::close(owned);
      return -ENAMETOOLONG;  // one component longer than PATH_MAX: no file system allows it
    }
    std::string piece = path.substr(start, cut - start);
    int next = open_once(dir, piece.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW, 0);
    if (owned >= 0) ::close(owned);
    if (next < 0) return next;
    dir = owned = next;
    start = cut + 1;
  }
  int fd = open_once(dir, path.c_str() + start, flags, mode);
  if (owned >= 0) ::close(owned);
  return fd;
}

}  // namespace coffer::transfer
