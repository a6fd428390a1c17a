// The file system operations of B's tree writer that restore shares: opening below a directory
// fd without following symlinks, copying with holes kept, reading and applying metadata
// (owners, xattrs and ACLs, modes, nanosecond times). One implementation for both directions,
// so a snapshot is written and given back by the same code.
#pragma once

#include <sys/types.h>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "coffer/snapshot/catalog.hpp"

namespace coffer::transfer {

using Xattrs = std::vector<std::pair<std::string, std::string>>;  // sorted by name

// openat2(2) with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS: opens a path below a directory fd
// without ever following a symlink or leaving the tree, whatever was planted in it.
// Returns the fd, or -errno. An empty path opens the directory itself. Paths longer than
// PATH_MAX are opened piece by piece (each piece beneath the last), never refused for length.
int open_beneath(int rootfd, const std::string& path, int flags, mode_t mode = 0) noexcept;

// Copies the data regions of `in` to the same offsets of `out` (holes stay holes) and sets the
// size. Returns the number of data bytes copied.
std::uint64_t copy_sparse(int in, int out, std::uint64_t size, const std::filesystem::path& shown);

// The xattrs of an entry, sorted by name. File systems without xattr support give none.
Xattrs read_xattrs_at(int dirfd, std::string_view name);
Xattrs read_xattrs_fd(int fd);
// XXH3-64 of the sorted xattrs (0 when there are none), the catalog's xattr digest.
std::uint64_t xattr_digest(const Xattrs& xattrs);

// The metadata MetadataApplier sets, whoever describes the entry.
struct EntryMetadata {
  snapshot::EntryType type = snapshot::EntryType::regular;
  std::uint32_t mode = 0, uid = 0, gid = 0;
  std::int64_t mtime_sec = 0;
  std::uint32_t mtime_nsec = 0;
  const Xattrs* xattrs = nullptr;  // may be null: none
};

struct FileEntry;  // the protocol's entry (private to transfer)

// Applies owner, xattrs, mode and mtime, in the order that keeps each one: chown clears setuid
// and capabilities, so it comes first; xattrs (ACLs) before the mode; times last.
// Owner changes that fail with EPERM (not root) are skipped from then on; `warn_once` logs the
// first refusal, otherwise the caller reports `chown_skipped` (entries whose owner differs from
// this process's and was not applied) itself.
struct MetadataApplier {
  bool can_chown = true;
  bool warned_chown = false;
  bool warn_once = true;
  std::uint64_t chown_skipped = 0;
  void apply_fd(int fd, const EntryMetadata& m, const std::filesystem::path& shown);
  // For entries that cannot be opened (symlinks, devices, fifos, sockets).
  void apply_at(int dirfd, std::string_view name, const EntryMetadata& m,
                const std::filesystem::path& shown);
  void apply_fd(int fd, const FileEntry& e, const std::filesystem::path& shown);
  void apply_at(int dirfd, std::string_view name, const FileEntry& e,
                const std::filesystem::path& shown);

 private:
  void chown_failed(int err, const std::filesystem::path& shown);
  void skipped_owner(const EntryMetadata& m);
};

}  // namespace coffer::transfer
