#include "coffer/util/fd.hpp"

#include <fcntl.h>
#include <unistd.h>
#include <cerrno>

#include "coffer/util/error.hpp"

namespace coffer {

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
  if (this != &other) reset(other.release());
  return *this;
}

UniqueFd::~UniqueFd() {
  reset();
}

int UniqueFd::release() noexcept {
  int fd = fd_;
  fd_ = -1;
  return fd;
}

void UniqueFd::reset(int fd) noexcept {
  // close(2) errors on a descriptor we only read from carry no information; durable writers
  // call fsync_fd() first, which reports the error that matters.
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

namespace {

[[noreturn]] void open_failed(const std::filesystem::path& shown, int flags, int err) {
  if (err == ELOOP && (flags & O_NOFOLLOW))
    fail(ErrorKind::failed, "open", shown.native(),
         "it is a symbolic link, which coffer does not follow here");
  throw_errno("open", shown, err);
}

}  // namespace

UniqueFd open_fd(const std::filesystem::path& path, int flags, mode_t mode) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  if (fd < 0) open_failed(path, flags, errno);
  return UniqueFd(fd);
}

UniqueFd open_fd_at(int dirfd, const char* name, int flags, mode_t mode,
                    const std::filesystem::path& shown) {
  int fd = ::openat(dirfd, name, flags | O_CLOEXEC, mode);
  if (fd < 0) open_failed(shown, flags, errno);
  return UniqueFd(fd);
}

std::size_t read_full(int fd, std::span<std::byte> buf, const std::filesystem::path& shown) {
  std::size_t done = 0;
  while (done < buf.size()) {
    ssize_t n = ::read(fd, buf.data() + done, buf.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("read", shown, errno);
    }
    if (n == 0) break;
    done += static_cast<std::size_t>(n);
  }
  return done;
}

std::size_t pread_full(int fd, std::span<std::byte> buf, off_t offset,
                       const std::filesystem::path& shown) {
  std::size_t done = 0;
  while (done < buf.size()) {
    ssize_t n =
        ::pread(fd, buf.data() + done, buf.size() - done, offset + static_cast<off_t>(done));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("read", shown, errno);
    }
    if (n == 0) break;
    done += static_cast<std::size_t>(n);
  }
  return done;
}

void write_all(int fd, std::span<const std::byte> buf, const std::filesystem::path& shown) {
  std::size_t done = 0;
  while (done < buf.size()) {
    ssize_t n = ::write(fd, buf.data() + done, buf.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("write", shown, errno);
    }
    done += static_cast<std::size_t>(n);
  }
}

void pwrite_all(int fd, std::span<const std::byte> buf, off_t offset,
                const std::filesystem::path& shown) {
  std::size_t done = 0;
  while (done < buf.size()) {
    ssize_t n =
        ::pwrite(fd, buf.data() + done, buf.size() - done, offset + static_cast<off_t>(done));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("write", shown, errno);
    }
    done += static_cast<std::size_t>(n);
  }
}

void fsync_fd(int fd, const std::filesystem::path& shown) {
  if (::fsync(fd) != 0) throw_errno("fsync", shown, errno);
}

void fsync_dir(const std::filesystem::path& dir) {
  UniqueFd fd = open_fd(dir.empty() ? "." : dir, O_RDONLY | O_DIRECTORY);
  fsync_fd(fd.get(), dir);
}

std::string read_file(const std::filesystem::path& path, int extra_flags) {
  UniqueFd fd = open_fd(path, O_RDONLY | extra_flags);
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("read", path, errno);
    }
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

}  // namespace coffer
