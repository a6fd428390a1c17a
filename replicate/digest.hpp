// B's record of its image at the generation last committed to a target: one fast hash per
// detection block (docs/formats/manifest.md, "B's digest"). It never leaves B, so it carries
// only a checksum against disk corruption, no MAC.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <vector>

#include "coffer/replicate/hashes.hpp"

namespace coffer::replicate {

struct Digest {
  std::uint32_t block_size = 0;
  std::uint64_t image_size = 0;
  std::vector<Hash128> blocks;  // fast hash of each block, zero-padded to block_size

  // nullopt (with a warning logged) if the file is missing, damaged or of another format:
  // the caller then falls back to comparing strong hashes against the manifest.
  static std::optional<Digest> load(const std::filesystem::path& path);
  void save(const std::filesystem::path& path) const;
};

// The fast hash of an all-zero block (holes, and blocks past an old end of the image).
const Hash128& zero_fast_hash(std::uint32_t block_size);

}  // namespace coffer::replicate
