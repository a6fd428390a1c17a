// Reading and applying the metadata the protocol carries: xattrs (and so POSIX ACLs), owners,
// modes, nanosecond times. Entries are reached as (directory fd, name) and symlinks are never
// followed; calls that have no *at form go through /proc/self/fd/N/name, which resolves the
// directory by its fd and the last component without following it.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "entry.hpp"

namespace coffer::transfer {

// "/proc/self/fd/<dirfd>/<name>"
std::string proc_path(int dirfd, std::string_view name);

// The xattrs of an entry, sorted by name. File systems without xattr support give none.
Xattrs read_xattrs_at(int dirfd, std::string_view name);
Xattrs read_xattrs_fd(int fd);

// Applies owner, xattrs, mode and mtime, in the order that keeps each one: chown clears setuid
// and capabilities, so it comes first; xattrs (ACLs) before the mode; times last.
// Owner changes that fail with EPERM (not root) are skipped and reported once through `warn`.
struct MetadataApplier {
  bool can_chown = true;
  bool warned_chown = false;
  void apply_fd(int fd, const FileEntry& e, const std::filesystem::path& shown);
  // For entries that cannot be opened (symlinks, devices, fifos, sockets).
  void apply_at(int dirfd, std::string_view name, const FileEntry& e,
                const std::filesystem::path& shown);

 private:
  void chown_failed(int err, const std::filesystem::path& shown);
};

}  // namespace coffer::transfer
