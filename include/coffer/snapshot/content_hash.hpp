// BLAKE2b-256 of file content (libsodium crypto_generichash), fed incrementally as data is
// written, so that the catalog's hashes cost no second read.
#pragma once

#include <cstdint>
#include <memory>
#include <span>

#include "coffer/snapshot/catalog.hpp"

namespace coffer::snapshot {

class ContentHasher {
 public:
  ContentHasher();
  ~ContentHasher();
  ContentHasher(ContentHasher&&) noexcept;
  ContentHasher& operator=(ContentHasher&&) noexcept;
  void update(std::span<const std::byte> data);
  // Feeds `count` zero bytes: the holes of a sparse file count as zeros.
  void update_zeros(std::uint64_t count);
  ContentHash finish();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// Reads an open file from its start to its end.
ContentHash hash_fd(int fd, const std::filesystem::path& shown);

}  // namespace coffer::snapshot
