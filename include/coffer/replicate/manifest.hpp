// The manifest of one replica generation: what C's image must contain, authenticated with a
// key only B (or whoever holds a passphrase of the vault) can derive. Byte layout:
// docs/formats/manifest.md. Restore from C uses this header to check a fetched replica.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "coffer/replicate/hashes.hpp"
#include "coffer/util/secret.hpp"

namespace coffer::replicate {

// The granularity the manifest authenticates (independent of B's change-detection block size;
// see docs/replication.md "Two granularities").
constexpr std::uint32_t kManifestBlockSize = 64 * 1024;
constexpr std::size_t kManifestHeaderSize = 128;
constexpr std::size_t kMacSize = 32;

using Id16 = std::array<std::byte, 16>;

struct ManifestHeader {
  std::uint64_t generation = 0;
  std::int64_t time = 0;  // seconds since the epoch (UTC) when B committed this generation
  std::uint64_t image_size = 0;
  std::uint32_t block_size = kManifestBlockSize;
  std::uint32_t detect_block_size = 0;  // B's change-detection block (informational)
  Id16 replica_id{};                    // random per target, chosen by B
  Id16 luks_uuid{};                     // the vault's LUKS2 UUID

  std::uint64_t block_count() const { return (image_size + block_size - 1) / block_size; }
  friend bool operator==(const ManifestHeader&, const ManifestHeader&) = default;
};

std::vector<std::byte> encode_manifest_header(const ManifestHeader& h);
// Checks magic, version, sizes; `what` names the source in errors (kind integrity).
ManifestHeader decode_manifest_header(std::span<const std::byte> bytes, const std::string& what);

struct Manifest {
  ManifestHeader header;
  std::vector<Hash256> entries;  // strong hash of each block, zero-padded to block_size
  Hash256 mac;                   // keyed BLAKE2b over header and entries

  std::vector<std::byte> encode() const;
  static Manifest decode(std::span<const std::byte> bytes, const std::string& what);
  static Manifest load(const std::filesystem::path& path);
  // Durable replacement (temp, fsync, rename, fsync dir).
  void save(const std::filesystem::path& path) const;

  Hash256 compute_mac(const Secret& mac_key) const;
  bool mac_valid(const Secret& mac_key) const;
};

// The manifest MAC key: BLAKE2b of the LUKS volume key, then libsodium's crypto_kdf with a
// fixed context. The volume key never leaves B; neither does this key.
Secret derive_mac_key(const Secret& volume_key);

// The strong hash of an all-zero block of `block_size` bytes (holes, and blocks past an old end).
const Hash256& zero_block_hash(std::uint32_t block_size);

Id16 parse_uuid(std::string_view text);  // "8-4-4-4-12" hex form; error (usage) if malformed
std::string format_uuid(const Id16& id);
std::string format_time(std::int64_t seconds);  // "2024-05-01 03:12:45 UTC"

}  // namespace coffer::replicate
