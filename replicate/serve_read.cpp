// C's answer to READ: the requested ranges of its image, read in 4 MiB pieces with holes skipped
// (SEEK_DATA/SEEK_HOLE), manifest blocks of zeros sent as READ_ZEROS. Two threads read ahead
// while the answer is written, so the link, not the disk, sets the pace.
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>

#include "chunks.hpp"
#include "coffer/replicate/manifest.hpp"
#include "coffer/util/fd.hpp"
#include "read_wire.hpp"

namespace coffer::replicate {
namespace {

bool all_zero(std::span<const std::byte> b) {
  return b.empty() ||
         (b[0] == std::byte{0} && std::memcmp(b.data(), b.data() + 1, b.size() - 1) == 0);
}

struct Piece {
  std::uint64_t offset = 0, length = 0;
};

struct ReadPiece {
  Chunk chunk;
  std::vector<char> data;  // per manifest block: holds something other than zeros
};

}  // namespace

std::vector<std::byte> encode_read(std::span<const ReadRange> ranges) {
  Encoder e;
  e.u32(static_cast<std::uint32_t>(ranges.size()));
  for (const ReadRange& r : ranges) e.u64(r.offset).u64(r.length);
  return std::move(e.bytes);
}

std::vector<ReadRange> decode_read(Decoder& d, std::uint32_t block) {
  std::uint32_t n = d.u32();
  if (n > kMaxReadRanges || d.remaining() != std::size_t{n} * 16) d.malformed("bad READ");
  std::vector<ReadRange> ranges(n);
  std::uint64_t end = 0;
  for (ReadRange& r : ranges) {
    r.offset = d.u64();
    r.length = d.u64();
    if (r.offset < end || r.offset % block || r.length == 0 || r.length > (1ull << 62) ||
        r.length % block)
      d.malformed("READ ranges must ascend, not overlap, and be whole blocks");
    end = r.end();
  }
  return ranges;
}

void serve_read(const std::filesystem::path& image, Channel& ch, Decoder& request) {
  const std::uint32_t M = kManifestBlockSize;
  std::vector<ReadRange> ranges = decode_read(request, M);
  UniqueFd fd = open_fd(image, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) throw_errno("stat", image, errno);
  const auto size = static_cast<std::uint64_t>(st.st_size);
  std::vector<Piece> pieces;
  for (const ReadRange& r : ranges)
    for (std::uint64_t off = r.offset, end = std::min(r.end(), size); off < end; off += kReadPiece)
      pieces.push_back({off, std::min(kReadPiece, end - off)});

  BufferPool buffers;
  auto work = [&](std::uint64_t i) {
    ReadPiece p;
    p.chunk.data = buffers.take();
    read_chunk(fd.get(), image, pieces[i].offset, pieces[i].length, kReadPiece, M, p.chunk);
    const std::uint64_t n = Geometry::blocks(pieces[i].length, M);
    p.data.assign(n, 0);
    const std::vector<char> has = p.chunk.data_map(M, n);
    for (std::uint64_t j = 0; j < n; ++j) {
      std::uint64_t len = std::min<std::uint64_t>(M, pieces[i].length - j * M);
      p.data[j] = has[j] && !all_zero(p.chunk.bytes(j * M, len));
    }
    return p;
  };
  // A run of zeros is sent once, however many pieces and holes it spans.
  std::uint64_t zeros_at = 0, zeros_len = 0;
  auto flush_zeros = [&] {
    if (zeros_len) ch.send(Msg::read_zeros, Encoder().u64(zeros_at).u64(zeros_len).bytes);
    zeros_len = 0;
  };
  run_ordered<ReadPiece>(pieces.size(), 2, 4, work, [&](std::uint64_t i, ReadPiece p) {
    const Piece& pc = pieces[i];
    for (std::uint64_t j = 0; j < p.data.size();) {
      std::uint64_t k = j;
      while (k < p.data.size() && p.data[k] == p.data[j]) ++k;
      std::uint64_t off = pc.offset + j * M, len = std::min(pc.length, k * M) - j * M;
      if (p.data[j]) {
        flush_zeros();
        ch.send(Msg::read_data, Encoder().u64(off).bytes, p.chunk.bytes(j * M, len));
      } else {
        if (zeros_len && zeros_at + zeros_len != off) flush_zeros();
        if (!zeros_len) zeros_at = off;
        zeros_len += len;
      }
      j = k;
    }
    buffers.give(std::move(p.chunk.data));
  });
  flush_zeros();
  ch.send(Msg::read_end, Encoder().u64(size).bytes);
}

}  // namespace coffer::replicate
