#include "coffer/util/lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>
#include <cerrno>
#include <string>
#include <thread>

#include "coffer/util/error.hpp"

namespace coffer {
namespace {

std::string holder_of(int fd) {
  char buf[32] = {};
  ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
  std::string pid = n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
  while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
  return pid.empty() ? "locked by another process" : "locked by pid " + pid;
}

}  // namespace

FileLock::FileLock(std::filesystem::path path, std::optional<std::chrono::milliseconds> wait)
    : path_(std::move(path)) {
  // Never through a symbolic link: the pid is written into the file, and a link planted where
  // the lock goes (a replica directory on C is writable by its user) would aim that write, and
  // the truncation in the destructor, at any file the process may write.
  fd_ = open_fd(path_, O_RDWR | O_CREAT | O_NOFOLLOW, 0600);
  auto deadline = std::chrono::steady_clock::now() + wait.value_or(std::chrono::milliseconds(0));
  while (::flock(fd_.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EINTR) continue;
    if (errno != EWOULDBLOCK) throw_errno("lock", path_, errno);
    if (std::chrono::steady_clock::now() >= deadline)
      fail(ErrorKind::locked, "lock", path_.native(), holder_of(fd_.get()));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_.get(), 0) != 0) throw_errno("truncate", path_, errno);
  pwrite_all(fd_.get(), std::as_bytes(std::span(pid.data(), pid.size())), 0, path_);
}

FileLock::~FileLock() {
  // Leave the file in place: unlinking it would race with a process that opened it and is
  // waiting for the lock on the old inode. Emptying it makes `holder_of` honest.
  if (fd_) (void)::ftruncate(fd_.get(), 0);
}

}  // namespace coffer
