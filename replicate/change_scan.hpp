// B's one pass over its image for a replication: which detection blocks changed since the
// generation C holds, the new digest, and the new manifest entries.
//
// With a digest of the base generation, every detection block gets a fast hash and only the
// manifest blocks that contain a changed detection block get a strong hash. Without one (first
// run, a lost digest, a new block size), every manifest block is strong-hashed and compared with
// the base manifest; a changed manifest block then counts all its detection blocks as changed.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <span>
#include <vector>

#include "chunks.hpp"
#include "coffer/replicate/hashes.hpp"
#include "digest.hpp"

namespace coffer::replicate {

struct ScanInput {
  int fd = -1;
  std::filesystem::path shown;
  Geometry geometry;
  const Digest* base_digest = nullptr;                 // same detect block size, or null
  const std::vector<Hash256>* base_entries = nullptr;  // the base generation's manifest entries
  unsigned threads = 0;
};

struct ChunkChanges {
  Chunk chunk;                         // data kept only when something changed
  std::vector<std::uint32_t> changed;  // detection blocks (index within the chunk) that changed
};

struct ScanOutput {
  std::vector<Hash128> digest;   // new fast hashes, one per detection block
  std::vector<Hash256> entries;  // new manifest entries
  std::uint64_t bytes_hashed_strong = 0;
};

// A run of consecutive changed detection blocks, all data or all zeros, at most `max_run` bytes:
// what one journal record carries.
struct ChangedRun {
  bool zero = false;
  std::uint64_t offset = 0;
  std::uint32_t length = 0;
  std::uint64_t blocks = 0;
  std::span<const std::byte> data;  // empty for zero runs
};
constexpr std::uint64_t kMaxRun = 1 << 20;

// Cuts the changes of one chunk into runs; `digest` is ScanOutput::digest (zero runs are found
// by the all-zero block's fast hash), `image_size` clips the last block.
void for_each_run(const ChunkChanges& changes, const std::vector<Hash128>& digest,
                  std::uint32_t detect, std::uint64_t image_size,
                  const std::function<void(const ChangedRun&)>& f);

// Scans; `consume` gets every chunk with changes, in image order, on the calling thread, while
// later chunks are being read and hashed.
void scan_changes(const ScanInput& in, ScanOutput& out,
                  const std::function<void(ChunkChanges&)>& consume);

}  // namespace coffer::replicate
