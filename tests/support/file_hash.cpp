#include "file_hash.hpp"

#include <fcntl.h>
#include <sodium.h>

#include "coffer/util/fd.hpp"
#include "coffer/util/secret.hpp"
#include "coffer/util/units.hpp"

namespace coffer::test {

std::string hash_file(const std::filesystem::path& path) {
  ensure_sodium();
  UniqueFd fd = open_fd(path, O_RDONLY);
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, 32);
  std::vector<std::byte> buf(1 << 20);
  for (;;) {
    std::size_t n = read_full(fd.get(), buf, path);
    if (n == 0) break;
    crypto_generichash_update(&st, reinterpret_cast<unsigned char*>(buf.data()), n);
  }
  unsigned char out[32];
  crypto_generichash_final(&st, out, sizeof out);
  return to_hex(out, sizeof out);
}

std::string hash_file_blocks(const std::filesystem::path& path) {
  ensure_sodium();
  UniqueFd fd = open_fd(path, O_RDONLY);
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, 32);
  std::vector<std::byte> buf(64 * 1024);
  std::uint64_t index = 0, size = 0;
  auto put_u64 = [&](std::uint64_t v) {
    unsigned char b[8];
    for (int i = 0; i < 8; ++i) b[i] = static_cast<unsigned char>(v >> (8 * i));
    crypto_generichash_update(&st, b, sizeof b);
  };
  for (;; ++index) {
    std::size_t n = read_full(fd.get(), buf, path);
    if (n == 0) break;
    size += n;
    bool zero = true;
    for (std::size_t i = 0; i < n && zero; ++i) zero = buf[i] == std::byte{0};
    if (!zero) {
      unsigned char h[32];
      crypto_generichash(h, sizeof h, reinterpret_cast<unsigned char*>(buf.data()), n, nullptr, 0);
      put_u64(index);
      crypto_generichash_update(&st, h, sizeof h);
    }
    if (n < buf.size()) break;
  }
  put_u64(size);
  unsigned char out[32];
  crypto_generichash_final(&st, out, sizeof out);
  return to_hex(out, sizeof out);
}

std::vector<std::string> hash_blocks(const std::filesystem::path& path, std::size_t block) {
  ensure_sodium();
  UniqueFd fd = open_fd(path, O_RDONLY);
  std::vector<std::string> out;
  std::vector<std::byte> buf(block);
  for (;;) {
    std::size_t n = read_full(fd.get(), buf, path);
    if (n == 0) break;
    unsigned char h[16];
    crypto_generichash(h, sizeof h, reinterpret_cast<unsigned char*>(buf.data()), n, nullptr, 0);
    out.push_back(to_hex(h, sizeof h));
  }
  return out;
}

}  // namespace coffer::test
