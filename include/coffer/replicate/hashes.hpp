// The hashes replication uses, behind one small interface.
//   fast   XXH3-128 (xxHash): detects which blocks of B's image changed. Never shown to C, never
//          trusted for authentication; it only has to make accidental collisions impossible.
//   strong BLAKE2b-512 truncated to 32 bytes (OpenSSL, util/blake2b.hpp): the manifest's
//          per-block hashes, which C stores and the MAC covers.
//   keyed  BLAKE2b-128 keyed with a nonce (libsodium): replica verify's proof of possession.
#pragma once

#include <array>
#include <cstddef>
#include <span>

namespace coffer::replicate {

struct Hash128 {
  std::array<std::byte, 16> bytes{};
  friend bool operator==(const Hash128&, const Hash128&) = default;
};
struct Hash256 {
  std::array<std::byte, 32> bytes{};
  friend bool operator==(const Hash256&, const Hash256&) = default;
};

Hash128 fast_hash(std::span<const std::byte> data);
Hash256 strong_hash(std::span<const std::byte> data);
// BLAKE2b-128 keyed with a 32-byte nonce: proof that C holds a block (replica verify).
Hash128 keyed_hash(std::span<const std::byte, 32> key, std::span<const std::byte> data);

// Incremental XXH3-128, for journal record checksums that cover a header and a payload.
class FastHasher {
 public:
  FastHasher();
  FastHasher(const FastHasher&) = delete;
  FastHasher& operator=(const FastHasher&) = delete;
  ~FastHasher();
  void update(std::span<const std::byte> data);
  Hash128 digest() const;

 private:
  void* state_;
};

}  // namespace coffer::replicate
