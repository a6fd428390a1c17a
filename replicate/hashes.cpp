#include "coffer/replicate/hashes.hpp"

#include <sodium.h>
#include <xxhash.h>
#include <cstring>
#include <new>

#include "coffer/util/blake2b.hpp"
#include "coffer/util/secret.hpp"

namespace coffer::replicate {
namespace {

Hash128 from_xxh(XXH128_hash_t h) {
  // The canonical (big-endian) form, so digests and journals mean the same on every host.
  XXH128_canonical_t canon;
  XXH128_canonicalFromHash(&canon, h);
  Hash128 out;
  std::memcpy(out.bytes.data(), canon.digest, out.bytes.size());
  return out;
}

const unsigned char* uc(const std::byte* p) {
  return reinterpret_cast<const unsigned char*>(p);
}

}  // namespace

Hash128 fast_hash(std::span<const std::byte> data) {
  return from_xxh(XXH3_128bits(data.data(), data.size()));
}

Hash256 strong_hash(std::span<const std::byte> data) {
  std::array<std::byte, 64> full;
  blake2b512(data, full);
  Hash256 out;
  std::memcpy(out.bytes.data(), full.data(), out.bytes.size());
  return out;
}

Hash128 keyed_hash(std::span<const std::byte, 32> key, std::span<const std::byte> data) {
  ensure_sodium();
  Hash128 out;
  crypto_generichash(reinterpret_cast<unsigned char*>(out.bytes.data()), out.bytes.size(),
                     uc(data.data()), data.size(), uc(key.data()), key.size());
  return out;
}

FastHasher::FastHasher() : state_(XXH3_createState()) {
  if (!state_) throw std::bad_alloc();
  XXH3_128bits_reset(static_cast<XXH3_state_t*>(state_));
}

FastHasher::~FastHasher() {
  XXH3_freeState(static_cast<XXH3_state_t*>(state_));
}

void FastHasher::update(std::span<const std::byte> data) {
  XXH3_128bits_update(static_cast<XXH3_state_t*>(state_), data.data(), data.size());
}

Hash128 FastHasher::digest() const {
  return from_xxh(XXH3_128bits_digest(static_cast<XXH3_state_t*>(state_)));
}

}  // namespace coffer::replicate
