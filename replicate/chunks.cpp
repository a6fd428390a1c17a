#include "chunks.hpp"

#include <unistd.h>
#include <cerrno>
#include <cstring>

#include "coffer/replicate/replicate.hpp"
#include "coffer/util/error.hpp"
#include "coffer/util/fd.hpp"

namespace coffer::replicate {

Geometry Geometry::make(std::uint64_t image_size, std::uint32_t detect, std::uint32_t manifest) {
  Geometry g;
  g.image_size = image_size;
  g.detect = detect;
  g.manifest = manifest;
  g.chunk = std::max<std::uint64_t>({kMinChunkSize, detect, manifest});
  return g;
}

bool Chunk::has_data(std::uint64_t rel, std::uint64_t len) const {
  for (const auto& [b, e] : extents)
    if (b < rel + len && e > rel) return true;
  return false;
}

std::vector<char> Chunk::data_map(std::uint64_t block, std::uint64_t count) const {
  std::vector<char> map(count, 0);
  for (const auto& [b, e] : extents)
    for (std::uint64_t i = b / block; i < count && i * block < e; ++i) map[i] = 1;
  return map;
}

void read_chunk(int fd, const std::filesystem::path& shown, std::uint64_t offset,
                std::uint64_t length, std::uint64_t capacity, std::uint64_t align, Chunk& out) {
  out.offset = offset;
  out.length = length;
  out.extents.clear();
  out.data.reserve(capacity);  // uninitialised: only the blocks that hold data are used
  const off_t end = static_cast<off_t>(offset + length);
  off_t pos = static_cast<off_t>(offset);
  while (pos < end) {
    off_t data = ::lseek(fd, pos, SEEK_DATA);
    if (data < 0) {
      if (errno == ENXIO) break;  // nothing but hole up to the end of the file
      throw_errno("seek data in", shown, errno);
    }
    if (data >= end) break;
    off_t hole = ::lseek(fd, data, SEEK_HOLE);
    if (hole < 0) throw_errno("seek hole in", shown, errno);
    hole = std::min(hole, end);
    out.extents.emplace_back(static_cast<std::uint64_t>(data) - offset,
                             static_cast<std::uint64_t>(hole) - offset);
    pos = hole;
  }
  // Zero the gaps next to data, up to the edges of the blocks that data touches.
  auto zero = [&](std::uint64_t b, std::uint64_t e) {
    if (e > b) std::memset(out.data.data() + b, 0, e - b);
  };
  auto down = [&](std::uint64_t x) { return x / align * align; };
  auto up = [&](std::uint64_t x) { return std::min(capacity, (x + align - 1) / align * align); };
  std::uint64_t cursor = 0;
  for (const auto& [b, e] : out.extents) {
    if (b > cursor) zero(std::max(cursor, down(b)), b);  // before this extent, in its first block
    auto buf = std::span(out.data.data() + b, e - b);
    std::size_t n = pread_full(fd, buf, static_cast<off_t>(offset + b), shown);
    if (n != buf.size())
      fail(ErrorKind::failed, "read", shown.native(), "the file shrank while being read");
    cursor = e;
    zero(e, up(e));  // after it, to the end of its last block (also the tail past the image)
  }
}

unsigned hashing_threads(unsigned requested) {
  if (requested) return std::min(requested, kMaxThreads);
  unsigned n = std::thread::hardware_concurrency();
  return n ? n : 1;
}

AlignedBuffer BufferPool::take() {
  std::lock_guard lock(mu_);
  if (free_.empty()) return {};
  auto b = std::move(free_.back());
  free_.pop_back();
  return b;
}

void BufferPool::give(AlignedBuffer buf) {
  std::lock_guard lock(mu_);
  if (free_.size() < 16) free_.push_back(std::move(buf));
}

}  // namespace coffer::replicate
