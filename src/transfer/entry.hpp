// One entry of the file list, as the sender found it, and its wire encoding (the LIST message
// of docs/formats/protocol.md: each entry delta-coded against the previous one).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "coffer/snapshot/catalog.hpp"
#include "coffer/transfer/tree_ops.hpp"
#include "wire.hpp"

namespace coffer::transfer {

using snapshot::EntryType;

constexpr std::uint32_t kNoLeader = UINT32_MAX;

struct FileEntry {
  std::string path;  // relative to the root, components joined by '/'; "" is the root
  EntryType type = EntryType::regular;
  std::uint32_t mode = 0;  // 07777 bits
  std::uint32_t uid = 0, gid = 0;
  std::uint64_t size = 0;
  std::int64_t mtime_sec = 0;
  std::uint32_t mtime_nsec = 0;
  std::uint64_t rdev = 0;
  std::string link_target;
  Xattrs xattrs;
  std::uint32_t leader = kNoLeader;  // hard link: index of the first entry of the same inode
  bool sparse = false;

  bool is_follower() const { return leader != kNoLeader; }
  std::string_view name() const;    // last component
  std::string_view parent() const;  // "" for top-level entries
};

// xattr_digest() (coffer/transfer/tree_ops.hpp) is what the catalog stores to detect an xattr
// or ACL change without keeping the values.

class ListEncoder {
 public:
  void encode(const FileEntry& e, Encoder& out);

 private:
  std::string prev_path_;
  std::uint32_t prev_st_mode_ = 0, prev_uid_ = 0, prev_gid_ = 0;
  std::int64_t prev_sec_ = 0;
};

// Decodes entries; a follower comes back with its leader's metadata filled in from `entries`.
class ListDecoder {
 public:
  FileEntry decode(Decoder& in, const std::vector<FileEntry>& entries);

 private:
  std::string prev_path_;
  std::uint32_t prev_st_mode_ = 0, prev_uid_ = 0, prev_gid_ = 0;
  std::int64_t prev_sec_ = 0;
};

// A path the receiver may create: components non-empty, not "." or "..", no NUL; "" is the root.
bool valid_relative_path(std::string_view path);

}  // namespace coffer::transfer
