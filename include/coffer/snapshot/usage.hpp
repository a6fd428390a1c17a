// Where the space goes: what each snapshot adds, i.e. the disk blocks of its inodes (files,
// directories, symlinks) that the previous snapshot of the same source does not share.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

#include "coffer/snapshot/layout.hpp"

namespace coffer::snapshot {

// For `snaps` (one host's complete snapshots, oldest first): bytes allocated (st_blocks * 512)
// by inodes of each tree that are not in the previous one's; the first adds all it has.
std::vector<std::uint64_t> added_bytes(const std::vector<SnapshotInfo>& snaps);

}  // namespace coffer::snapshot
