// Reading and applying the metadata the protocol carries: xattrs (and so POSIX ACLs), owners,
// modes, nanosecond times. Entries are reached as (directory fd, name) and symlinks are never
// followed; calls that have no *at form go through /proc/self/fd/N/name, which resolves the
// directory by its fd and the last component without following it. The functions restore
// shares are declared in coffer/transfer/tree_ops.hpp.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "coffer/transfer/tree_ops.hpp"
#include "entry.hpp"

namespace coffer::transfer {

// "/proc/self/fd/<dirfd>/<name>"
std::string proc_path(int dirfd, std::string_view name);

}  // namespace coffer::transfer
