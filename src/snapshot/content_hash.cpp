// The one file that speaks libsodium's generichash for the snapshot module.
#include "coffer/snapshot/content_hash.hpp"

#include <sodium.h>
#include <vector>

#include "coffer/util/fd.hpp"
#include "coffer/util/secret.hpp"

namespace coffer::snapshot {

struct ContentHasher::State {
  crypto_generichash_state st;
};

ContentHasher::ContentHasher() : state_(std::make_unique<State>()) {
  ensure_sodium();
  crypto_generichash_init(&state_->st, nullptr, 0, 32);
}
ContentHasher::~ContentHasher() = default;
ContentHasher::ContentHasher(ContentHasher&&) noexcept = default;
ContentHasher& ContentHasher::operator=(ContentHasher&&) noexcept = default;

void ContentHasher::update(std::span<const std::byte> data) {
  crypto_generichash_update(&state_->st, reinterpret_cast<const unsigned char*>(data.data()),
                            data.size());
}

void ContentHasher::update_zeros(std::uint64_t count) {
  static const std::vector<std::byte> zeros(1 << 16);
  while (count > 0) {
    std::size_t n = count < zeros.size() ? static_cast<std::size_t>(count) : zeros.size();
    update(std::span(zeros.data(), n));
    count -= n;
  }
}

ContentHash ContentHasher::finish() {
  ContentHash h;
  crypto_generichash_final(&state_->st, h.data(), h.size());
  return h;
}

ContentHash hash_fd(int fd, const std::filesystem::path& shown) {
  ContentHasher h;
  std::vector<std::byte> buf(1 << 18);
  off_t off = 0;
  for (;;) {
    std::size_t n = pread_full(fd, buf, off, shown);
    if (n == 0) break;
    h.update(std::span(buf.data(), n));
    off += static_cast<off_t>(n);
  }
  return h.finish();
}

}  // namespace coffer::snapshot
