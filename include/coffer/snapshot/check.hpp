// coffer check: a snapshot's tree against its catalog. The structure (every entry there with its
// recorded type, size, mode, mtime and symlink target; each inode's link count equal to the names
// it has across the host's snapshots) and, with read_data, the contents against the BLAKE2b.
// Each shared inode is read once; damage is reported with every snapshot that shares it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace coffer::snapshot {

struct CheckOptions {
  bool read_data = false;
  // A subset of the inodes: part `subset_k` of `subset_t` (1-based; each file is in exactly one
  // part, the same one every run), or a random `percent` of them. Both zero: all (with read_data).
  unsigned subset_k = 0, subset_t = 0;
  double percent = 0;
};

struct SnapshotPath {
  std::string snapshot;  // timestamp
  std::string path;      // relative to the tree, "" for the root
};

struct Damage {
  std::string host;
  SnapshotPath where;
  std::string reason;
  std::vector<SnapshotPath> shared;  // every name of the same inode, `where` included
};

struct CheckReport {
  std::uint64_t snapshots = 0, entries = 0, inodes_read = 0, bytes_read = 0;
  std::vector<Damage> damage;
};

// Checks every complete snapshot of `host`. Takes the host lock (a backup changes link counts).
void check_host(const std::filesystem::path& repo, const std::string& host,
                const CheckOptions& options, CheckReport& report);

}  // namespace coffer::snapshot
