// Removing snapshots: crash-safe (a snapshot is renamed out of hosts/NAME/ into
// hosts/NAME/.removing/ before anything in it is deleted, so it is either whole or gone) and fast
// (the tree is unlinked by several threads across its directories, not by one serial walk).
// Unlinking only drops names: a file shared with another snapshot keeps its bytes and metadata,
// only its link count falls. See docs/snapshots.md ("Removing snapshots").
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "coffer/util/lock.hpp"

namespace coffer::snapshot {

// The host lock that backups hold (hosts/NAME/.lock): taken so no backup links from a snapshot
// while it goes. Fails with kind locked when a run holds it.
FileLock lock_host(const std::filesystem::path& repo, const std::string& host);

struct RemovalStats {
  std::uint64_t snapshots = 0;  // snapshots deleted (including leftovers of an interrupted run)
  std::uint64_t leftovers = 0;  // of those, left in .removing/ by an interrupted run
  std::uint64_t entries = 0;    // names unlinked
};

// Deletes what an interrupted removal left in hosts/NAME/.removing/. The caller holds the lock.
RemovalStats finish_removals(const std::filesystem::path& repo, const std::string& host);

// Moves the named snapshots (directory names under hosts/NAME/) into .removing/, makes the moves
// durable, then deletes them. Leftovers are finished first. The caller holds the host lock.
RemovalStats remove_snapshots(const std::filesystem::path& repo, const std::string& host,
                              const std::vector<std::string>& names);

// Deletes a directory tree without following symlinks, with `threads` workers sharing the
// directories. Directories are made writable first (a copied read-only source directory);
// files are never chmod-ed, since their inodes may be shared. Returns the names removed.
std::uint64_t delete_tree_parallel(const std::filesystem::path& dir, unsigned threads = 8);

}  // namespace coffer::snapshot
