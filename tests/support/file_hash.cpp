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
