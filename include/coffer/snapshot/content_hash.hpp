// BLAKE2b-256 of file content (libsodium crypto_generichash), fed incrementally as data is
// written, so that the catalog's hashes cost no second read. Sparse files use the block form
// (docs/formats/catalog.md), in which a hole costs nothing however long it is.
#pragma once

#include <cstdint>
#include <memory>
#include <span>

#include "coffer/snapshot/catalog.hpp"

namespace coffer::snapshot {

// Block size of the block form: a block that is all zeros is left out of the hash.
constexpr std::uint64_t kHashBlock = 64 * 1024;

class ContentHasher {
 public:
  // `blocks`: the block form (for files with holes), else BLAKE2b-256 of the plain content.
  explicit ContentHasher(bool blocks = false);
  ~ContentHasher();
  ContentHasher(ContentHasher&&) noexcept;
  ContentHasher& operator=(ContentHasher&&) noexcept;
  void update(std::span<const std::byte> data);
  // Feeds `count` zero bytes: the holes of a sparse file count as zeros. In the block form
  // whole zero blocks are skipped, so this costs O(1) for any count.
  void update_zeros(std::uint64_t count);
  std::uint64_t position() const;
  ContentHash finish();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// Reads an open file from its start to its end. In the block form only its data regions are
// read (SEEK_DATA/SEEK_HOLE). Checks the interrupt flag as it goes.
ContentHash hash_fd(int fd, const std::filesystem::path& shown, bool blocks = false);

}  // namespace coffer::snapshot
