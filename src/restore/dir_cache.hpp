// Directory fds below a root, opened with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) and
// cached for the few directories a pre-order walk touches at a time.
#pragma once

#include <array>
#include <filesystem>
#include <string>
#include <string_view>

#include "coffer/util/fd.hpp"

namespace coffer::restore {

class DirCache {
 public:
  DirCache(int root_fd, std::filesystem::path shown) : root_(root_fd), shown_(std::move(shown)) {}
  // The fd of `dir` ("" is the root), or -errno when it cannot be opened (a symlink: -ELOOP).
  int get(std::string_view dir);
  // As get(), throwing an error that names the directory.
  int require(std::string_view dir);
  void forget(std::string_view dir);  // after the directory was removed or replaced
  void clear();
  std::filesystem::path shown(std::string_view rel) const;

 private:
  struct Slot {
    std::string path;
    UniqueFd fd;
  };
  int root_;
  std::filesystem::path shown_;
  std::array<Slot, 16> slots_;
  std::size_t next_ = 0;
};

// Removes `name` in `dirfd` and, for a directory, everything below it, never following a
// symlink. Returns 0 or errno.
int remove_beneath(int dirfd, const std::string& name);

}  // namespace coffer::restore
