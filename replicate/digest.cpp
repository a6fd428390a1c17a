#include "digest.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <cerrno>
#include <map>
#include <mutex>

#include "coffer/util/atomic_file.hpp"
#include "coffer/util/fd.hpp"
#include "coffer/util/log.hpp"
#include "wire.hpp"

namespace coffer::replicate {
namespace {

constexpr char kMagic[8] = {'C', 'F', 'D', 'I', 'G', 'S', 'T', '1'};
constexpr std::size_t kHeaderSize = 48;

Hash128 checksum_of(std::span<const std::byte> header_fields, const std::vector<Hash128>& blocks) {
  FastHasher h;
  h.update(header_fields);
  h.update(std::as_bytes(std::span(blocks)));
  return h.digest();
}

}  // namespace

std::optional<Digest> Digest::load(const std::filesystem::path& path) {
  // Read straight into the vector: at 4 KiB blocks a 16 GiB image has a 64 MiB digest.
  UniqueFd fd;
  try {
    fd = open_fd(path, O_RDONLY);
  } catch (const Error& e) {
    if (e.code() != std::errc::no_such_file_or_directory) log::warn("{}", e.what());
    return std::nullopt;
  }
  try {
    std::vector<std::byte> head(kHeaderSize);
    Decoder d(head, path.native());
    if (read_full(fd.get(), head, path) != head.size()) d.malformed("truncated header");
    if (std::memcmp(d.raw(8).data(), kMagic, 8) != 0) d.malformed("not a coffer digest");
    Digest g;
    g.block_size = d.u32();
    d.u32();
    g.image_size = d.u64();
    std::uint64_t count = d.u64();
    Hash128 sum = d.hash128();
    struct stat st {};
    if (g.block_size < 4096 || count != (g.image_size + g.block_size - 1) / g.block_size ||
        ::fstat(fd.get(), &st) != 0 ||
        static_cast<std::uint64_t>(st.st_size) != kHeaderSize + count * 16)
      d.malformed("sizes do not match");
    g.blocks.resize(count);
    auto body = std::as_writable_bytes(std::span(g.blocks));
    if (read_full(fd.get(), body, path) != body.size()) d.malformed("truncated");
    if (checksum_of(std::span(head).first(32), g.blocks) != sum) d.malformed("checksum mismatch");
    return g;
  } catch (const Error& e) {
    log::warn("ignoring damaged digest: {}", e.what());
    return std::nullopt;
  }
}

void Digest::save(const std::filesystem::path& path) const {
  Encoder e;
  e.raw(kMagic, 8).u32(block_size).u32(0).u64(image_size).u64(blocks.size());
  e.hash(checksum_of(e.bytes, blocks));
  AtomicFile file(path, 0600);
  file.write(e.bytes);
  file.write(std::as_bytes(std::span(blocks)));
  file.commit();
}

const Hash128& zero_fast_hash(std::uint32_t block_size) {
  static std::mutex mu;
  static std::map<std::uint32_t, Hash128> cache;
  std::lock_guard lock(mu);
  auto it = cache.find(block_size);
  if (it == cache.end()) {
    std::vector<std::byte> zeros(block_size);
    it = cache.emplace(block_size, fast_hash(zeros)).first;
  }
  return it->second;
}

}  // namespace coffer::replicate
