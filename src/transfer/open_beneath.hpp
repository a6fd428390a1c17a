// openat2(2) with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS: opens a path below a directory fd
// without ever following a symlink or leaving the tree, whatever was planted in it.
#pragma once

#include <string>
#include <sys/types.h>

namespace coffer::transfer {

// Returns the fd, or -errno. An empty path opens the directory itself. Paths longer than
// PATH_MAX are opened piece by piece (each piece beneath the last), never refused for length.
int open_beneath(int rootfd, const std::string& path, int flags, mode_t mode = 0) noexcept;

}  // namespace coffer::transfer
