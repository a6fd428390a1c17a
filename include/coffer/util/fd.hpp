// A move-only file descriptor and the few I/O loops everything else builds on.
#pragma once

#include <sys/types.h>
#include <cstddef>
#include <filesystem>
#include <span>
#include <string>

namespace coffer {

class UniqueFd {
 public:
  UniqueFd() noexcept = default;
  explicit UniqueFd(int fd) noexcept : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd();

  int get() const noexcept { return fd_; }
  explicit operator bool() const noexcept { return fd_ >= 0; }
  int release() noexcept;
  void reset(int fd = -1) noexcept;

 private:
  int fd_ = -1;
};

// open(2) with O_CLOEXEC added; throws Error("open", path, errno) on failure. With O_NOFOLLOW,
// a symbolic link in the last component is named as such (rather than ELOOP's "Too many
// levels of symbolic links").
UniqueFd open_fd(const std::filesystem::path& path, int flags, mode_t mode = 0);
// openat(2) relative to a directory fd; `shown` is the path used in error messages.
UniqueFd open_fd_at(int dirfd, const char* name, int flags, mode_t mode,
                    const std::filesystem::path& shown);

// Reads until `buf` is full or end of file; returns bytes read. EINTR is retried.
std::size_t read_full(int fd, std::span<std::byte> buf, const std::filesystem::path& shown);
// Like read_full but at an offset (pread).
std::size_t pread_full(int fd, std::span<std::byte> buf, off_t offset,
                       const std::filesystem::path& shown);
void write_all(int fd, std::span<const std::byte> buf, const std::filesystem::path& shown);
void pwrite_all(int fd, std::span<const std::byte> buf, off_t offset,
                const std::filesystem::path& shown);
inline void write_all(int fd, std::string_view text, const std::filesystem::path& shown) {
  write_all(fd, std::as_bytes(std::span(text.data(), text.size())), shown);
}

void fsync_fd(int fd, const std::filesystem::path& shown);
// fsync of the directory itself, so that a rename or create in it is durable.
void fsync_dir(const std::filesystem::path& dir);

// Whole-file helpers for small files (configs, state, key files).
// `extra_flags` go to open(2), e.g. O_NOFOLLOW for a file that must never be a link.
std::string read_file(const std::filesystem::path& path, int extra_flags = 0);

}  // namespace coffer
