// `coffer replica fetch SOURCE IMAGE_OUT`: disaster recovery from C with nothing but a key.
//
// Downloads C's manifest, then the LUKS2 header blocks, checked against the manifest; unlocks
// the volume key from that header (the caller's job: replicate does not depend on vault), checks
// the manifest's MAC with the key derived from it, then downloads every other block in one
// pipelined stream and checks each against the manifest as it arrives. The image is written
// under a hidden temporary name, holes left as holes, and renamed to IMAGE_OUT only when every
// block verified. A fetch cut short keeps its partial file; the next one re-verifies what it
// holds and downloads only the rest. How and why: docs/disaster-recovery.md.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "coffer/replicate/replicate.hpp"
#include "coffer/util/secret.hpp"

namespace coffer::replicate {

// What the caller learns from the LUKS2 header of the partial image.
struct UnlockedHeader {
  Secret volume_key;
  std::string uuid;  // text form, as libcryptsetup reports it
};

struct FetchOptions {
  std::string source;          // local DIR or [user@]host:DIR, served by `replica-serve`
  std::filesystem::path out;   // IMAGE_OUT; must not exist
  std::string remote_command;  // program that starts coffer on C (default: coffer)
  SshOptions ssh;
  // Reads the header of `partial` (its first blocks verified against the manifest) and unlocks
  // the volume key; a wrong key throws ErrorKind::bad_key.
  std::function<UnlockedHeader(const std::filesystem::path& partial)> unlock;
  // The byte ranges the unlock reads (metadata and key slots), from the metadata in block 0.
  std::function<std::vector<std::pair<std::uint64_t, std::uint64_t>>(
      const std::filesystem::path& partial)>
      header_areas;
  std::optional<std::uint64_t> expect_generation;  // refuse an older generation
  std::optional<std::int64_t> not_older_than;      // refuse one committed before (epoch seconds)
  std::optional<std::string> expect_uuid;          // refuse another vault's replica
  std::uint64_t limit_rate = 0;                    // bytes per second downloaded; 0: unlimited
  unsigned threads = 0;                            // hashing threads; 0: every core
  // Called as block data arrives (often: the caller throttles what it shows): bytes received of
  // the bytes to download in all (the blocks that are neither zeros nor kept from a resume).
  std::function<void(std::uint64_t done, std::uint64_t total)> on_progress;
};

struct FetchResult {
  std::string source;
  std::filesystem::path out, partial;
  bool verified = false;  // the MAC verified: generation and time below are genuine
  std::uint64_t generation = 0;
  std::int64_t time = 0;
  std::uint64_t image_size = 0;
  std::string uuid;
  std::uint64_t blocks = 0;       // manifest blocks in the image
  std::uint64_t blocks_kept = 0;  // already in the partial file and re-verified
  std::uint64_t bytes_kept = 0;
  std::uint64_t blocks_fetched = 0;  // downloaded with data and verified
  std::uint64_t bytes_fetched = 0;
  std::uint64_t bytes_received = 0;  // protocol bytes read from the link
  bool resumed = false;              // a partial file of an earlier fetch was there
  std::string b_record;  // which of B's records (IMAGE_OUT.coffer/) vouched for C's manifest
  std::vector<BadBlock> bad_blocks;
  double seconds = 0;
};

// Fills `r` as it goes, so that a caller can report what a failed fetch downloaded. Throws on
// every failure: ErrorKind::integrity (with r.bad_blocks listing every bad block where blocks
// failed), bad_key, missing, failed (the link; the partial file is then kept for a resume).
void fetch(const FetchOptions& o, FetchResult& r);

// Where fetch() keeps its partial image for IMAGE_OUT (a hidden name beside it).
std::filesystem::path fetch_partial_path(const std::filesystem::path& out);

}  // namespace coffer::replicate
