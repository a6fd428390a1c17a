// A read-only file system abstraction over the ext4 inside a closed vault image, read through
// libext2fs with an io_manager that decrypts in user space (docs/reader.md). Paths are
// relative to the file system root, '/'-separated, and never follow a symlink.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <ctime>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "coffer/reader/image.hpp"

namespace coffer::reader {

struct Stat {
  std::uint32_t ino = 0;
  mode_t mode = 0;  // type and permission bits, as st_mode
  uid_t uid = 0;
  gid_t gid = 0;
  std::uint64_t size = 0;
  std::uint32_t nlink = 0;
  dev_t rdev = 0;
  timespec atime{}, mtime{}, ctime{};
};

struct DirEntry {
  std::string name;
  std::uint32_t ino = 0;
};

// A mapped run of a regular file; everything else (before, between, after) is a hole.
struct Extent {
  std::uint64_t offset = 0;  // bytes in the file
  std::uint64_t length = 0;
};

class FileSystem {
 public:
  // Opens the ext4 in `image` read-only. Refuses a file system that needs journal recovery
  // (the vault was not closed cleanly) or has incompatible features libext2fs cannot read.
  explicit FileSystem(std::shared_ptr<const Image> image);
  FileSystem(const FileSystem&) = delete;
  ~FileSystem();

  // Inode of `path` ("" or "." is the root); ErrorKind::missing if it does not exist.
  std::uint32_t lookup(const std::string& path) const;
  bool exists(const std::string& path) const;
  Stat stat(std::uint32_t ino) const;
  // Entries without "." and "..", in directory order.
  std::vector<DirEntry> list(std::uint32_t dir) const;
  std::string readlink(std::uint32_t ino) const;
  // Reads up to out.size() bytes at `offset`; holes read as zeros. Returns bytes read.
  std::size_t read(std::uint32_t ino, std::uint64_t offset, std::span<std::byte> out) const;
  // The mapped (written) runs of a regular file; unwritten extents count as holes.
  std::vector<Extent> extents(std::uint32_t ino) const;
  // Tells the image's source which blocks reading all of `ino`'s data will need (a replica on
  // C then fetches them in one request instead of one block at a time).
  void will_read(std::uint32_t ino) const;
  // Extended attributes (name, value), ACLs as system.posix_acl_* in the Linux xattr format.
  std::vector<std::pair<std::string, std::string>> xattrs(std::uint32_t ino) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace coffer::reader
