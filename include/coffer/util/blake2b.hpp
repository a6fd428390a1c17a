// BLAKE2b-512 from OpenSSL's libcrypto, for hashing large amounts of data.
//
// Why not libsodium's crypto_generichash, which coffer uses for everything small: on the machines
// coffer is measured on, libcrypto's BLAKE2b runs at ~900 MB/s and libsodium's (and libb2's,
// libgcrypt's) at ~500 MB/s, and replication hashes every changed 64 KiB block. OpenSSL 3.0
// offers only the 64-byte variant; callers that want 32 bytes take the first 32 (docs/formats/
// manifest.md), which is not the same value as BLAKE2b-256.
#pragma once

#include <cstddef>
#include <span>

namespace coffer {

void blake2b512(std::span<const std::byte> data, std::span<std::byte, 64> out);

}  // namespace coffer
