// The names of one source inode (a hard-link group) as one inode in the new tree, even when the
// inode it shares with older snapshots runs out of links (EMLINK): the group then moves to a
// fresh copy of its own, and the names already linked are re-pointed to it, so the snapshot
// keeps the source's hard-link structure. See docs/snapshots.md.
#pragma once

#include <cstdint>
#include <unordered_map>
#include <vector>

#include "entry.hpp"
#include "tree_writer.hpp"

namespace coffer::transfer {

class LinkGroups {
 public:
  // Links follower `id` to the group of `leader` (whose file is in the tree). Returns true when
  // a local copy had to be made (counted by the caller as "copied").
  bool link(TreeWriter& tw, const std::vector<FileEntry>& entries, std::uint32_t leader,
            std::uint32_t id);

 private:
  struct Group {
    std::uint32_t target;                // the entry whose name holds the group's inode
    std::vector<std::uint32_t> members;  // names linked to that inode in this tree, target first
  };
  std::unordered_map<std::uint32_t, Group> groups_;
};

}  // namespace coffer::transfer
