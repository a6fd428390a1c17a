// The one file that speaks libsodium's generichash for the snapshot module.
#include "coffer/snapshot/content_hash.hpp"

#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>
#include <vector>

#include "coffer/util/error.hpp"
#include "coffer/util/fd.hpp"
#include "coffer/util/secret.hpp"
#include "coffer/util/signals.hpp"

namespace coffer::snapshot {
namespace {
const std::vector<std::byte>& zero_block() {
  static const std::vector<std::byte> zeros(kHashBlock);
  return zeros;
}

void put_u64le(crypto_generichash_state& st, std::uint64_t v) {
  unsigned char b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<unsigned char>(v >> (8 * i));
  crypto_generichash_update(&st, b, sizeof b);
}
}  // namespace

// Block form: the outer hash takes, for each block with a non-zero byte in ascending order,
// u64le(block index) and BLAKE2b-256(block), then u64le(size). `block` holds the current,
// partly filled block; every byte of it below `pos % kHashBlock` has been written.
struct ContentHasher::State {
  crypto_generichash_state st;
  bool blocks = false;
  std::uint64_t pos = 0;
  std::vector<std::byte> block;

  void end_block(std::uint64_t index, std::size_t len) {
    if (std::memcmp(block.data(), zero_block().data(), len) == 0) return;
    unsigned char h[32];
    crypto_generichash(h, sizeof h, reinterpret_cast<const unsigned char*>(block.data()), len,
                       nullptr, 0);
    put_u64le(st, index);
    crypto_generichash_update(&st, h, sizeof h);
  }
};

ContentHasher::ContentHasher(bool blocks) : state_(std::make_unique<State>()) {
  ensure_sodium();
  crypto_generichash_init(&state_->st, nullptr, 0, 32);
  state_->blocks = blocks;
  if (blocks) state_->block.resize(kHashBlock);
}
ContentHasher::~ContentHasher() = default;
ContentHasher::ContentHasher(ContentHasher&&) noexcept = default;
ContentHasher& ContentHasher::operator=(ContentHasher&&) noexcept = default;

std::uint64_t ContentHasher::position() const {
  return state_->pos;
}

void ContentHasher::update(std::span<const std::byte> data) {
  State& s = *state_;
  if (!s.blocks) {
    crypto_generichash_update(&s.st, reinterpret_cast<const unsigned char*>(data.data()),
                              data.size());
    s.pos += data.size();
    return;
  }
  while (!data.empty()) {
    auto fill = static_cast<std::size_t>(s.pos % kHashBlock);
    std::size_t n = std::min<std::size_t>(data.size(), kHashBlock - fill);
    std::memcpy(s.block.data() + fill, data.data(), n);
    s.pos += n;
    data = data.subspan(n);
    if (fill + n == kHashBlock) s.end_block(s.pos / kHashBlock - 1, kHashBlock);
  }
}

void ContentHasher::update_zeros(std::uint64_t count) {
  State& s = *state_;
  if (!s.blocks) {
    while (count > 0) {
      std::size_t n = count < kHashBlock ? static_cast<std::size_t>(count) : kHashBlock;
      update(std::span(zero_block().data(), n));
      count -= n;
    }
    return;
  }
  auto fill = static_cast<std::size_t>(s.pos % kHashBlock);
  if (fill > 0) {  // finish the current block with zeros
    std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(count, kHashBlock - fill));
    update(std::span(zero_block().data(), n));
    count -= n;
  }
  s.pos += count / kHashBlock * kHashBlock;  // whole zero blocks leave no trace
  std::size_t rest = static_cast<std::size_t>(count % kHashBlock);
  std::memset(s.block.data(), 0, rest);
  s.pos += rest;
}

ContentHash ContentHasher::finish() {
  State& s = *state_;
  ContentHash h;
  h.blocks = s.blocks;
  if (s.blocks) {
    if (s.pos % kHashBlock)
      s.end_block(s.pos / kHashBlock, static_cast<std::size_t>(s.pos % kHashBlock));
    put_u64le(s.st, s.pos);
  }
  crypto_generichash_final(&s.st, h.data(), h.size());
  return h;
}

ContentHash hash_fd(int fd, const std::filesystem::path& shown, bool blocks) {
  ContentHasher h(blocks);
  std::vector<std::byte> buf(1 << 18);
  struct stat st;
  if (::fstat(fd, &st) != 0) throw_errno("stat", shown, errno);
  auto size = static_cast<std::uint64_t>(st.st_size);
  std::uint64_t off = 0;
  while (off < size || !blocks) {
    check_interrupted("hashing a file");
    std::uint64_t end = size;
    if (blocks) {
      off_t data = ::lseek(fd, static_cast<off_t>(off), SEEK_DATA);
      if (data < 0 && errno != ENXIO) throw_errno("seek data in", shown, errno);
      if (data < 0) break;  // only a hole is left
      off_t hole = ::lseek(fd, data, SEEK_HOLE);
      if (hole < 0) throw_errno("seek hole in", shown, errno);
      h.update_zeros(static_cast<std::uint64_t>(data) - off);
      off = static_cast<std::uint64_t>(data);
      end = static_cast<std::uint64_t>(hole);
    }
    std::size_t want =
        blocks ? static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), end - off))
               : buf.size();
    std::size_t n = pread_full(fd, std::span(buf.data(), want), static_cast<off_t>(off), shown);
    if (n == 0) break;
    h.update(std::span(buf.data(), n));
    off += n;
  }
  if (blocks && off < size) h.update_zeros(size - off);
  return h.finish();
}

}  // namespace coffer::snapshot
