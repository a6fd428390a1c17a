// A replica on C read block by block, for restoring from C without fetching the image
// (docs/reader.md, "The remote source"). The order of trust is `replica fetch`'s: C's manifest,
// then the LUKS2 header blocks checked against it, the volume key unlocked from that header, the
// manifest's MAC checked with the key derived from it; after that every 64 KiB block is fetched
// only when it is first read (through the helper's READ frame), checked against the manifest
// before any byte of it is used, and kept for the run.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "coffer/replicate/fetch.hpp"
#include "coffer/replicate/replicate.hpp"
#include "coffer/util/secret.hpp"

namespace coffer::replicate {

struct ReplicaReaderOptions {
  std::string source;          // local DIR or [user@]host:DIR, served by `replica-serve`
  std::string remote_command;  // program that starts coffer on C (default: coffer)
  SshOptions ssh;
  // As FetchOptions: unlock the header held by `header` (its verified blocks, the rest holes),
  // and the byte ranges that unlock reads.
  std::function<UnlockedHeader(const std::filesystem::path& header)> unlock;
  std::function<std::vector<std::pair<std::uint64_t, std::uint64_t>>(
      const std::filesystem::path& header)>
      header_areas;
  std::uint64_t cache_bytes = 256ull << 20;  // blocks kept for the run (oldest dropped first)
};

struct ReplicaReadStats {
  std::uint64_t blocks = 0;    // blocks downloaded with data and verified
  std::uint64_t bytes = 0;     // their bytes
  std::uint64_t received = 0;  // protocol bytes read from the link
};

class ReplicaReader {
 public:
  // Connects and authenticates (throws: missing, bad_key, integrity naming the offset, failed).
  explicit ReplicaReader(const ReplicaReaderOptions& options);
  ~ReplicaReader();
  ReplicaReader(const ReplicaReader&) = delete;

  // A private temporary file (removed by the destructor) with C's verified header blocks at
  // their offsets and holes elsewhere, as large as the image: what libcryptsetup reads.
  const std::filesystem::path& header_file() const;
  const Secret& volume_key() const;
  std::uint64_t image_size() const;
  std::uint64_t generation() const;
  std::int64_t time() const;

  // Bytes [offset, offset + out.size()) of C's image. A block that does not match the manifest
  // throws ErrorKind::integrity naming its offset; none of its bytes are returned.
  void read(std::uint64_t offset, std::span<std::byte> out);
  // Downloads the blocks of these byte ranges of the image not held yet, in one request.
  void prefetch(std::span<const std::pair<std::uint64_t, std::uint64_t>> ranges);

  ReplicaReadStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace coffer::replicate
