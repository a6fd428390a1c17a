// B's scan of its image: changed detection blocks, holes, strong hashes only where needed, and
// the same manifest entries whether or not a digest of the base generation is available.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cstring>
#include <random>

#include "change_scan.hpp"
#include "coffer/replicate/manifest.hpp"
#include "coffer/util/fd.hpp"
#include "temp_dir.hpp"

namespace coffer::replicate {
namespace {

void write_random(const std::filesystem::path& p, std::uint64_t offset, std::size_t len,
                  unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<std::byte> buf(len);
  for (auto& b : buf) b = static_cast<std::byte>(rng());
  UniqueFd fd = open_fd(p, O_WRONLY | O_CREAT, 0644);
  pwrite_all(fd.get(), buf, static_cast<off_t>(offset), p);
}

struct Scan {
  ScanOutput out;
  std::vector<std::uint64_t> changed_offsets;  // absolute offsets of changed detection blocks
};

Scan scan(const std::filesystem::path& p, std::uint32_t D, const Digest* base_digest,
          const std::vector<Hash256>* base_entries, unsigned threads = 2) {
  UniqueFd fd = open_fd(p, O_RDONLY);
  struct stat st {};
  ::fstat(fd.get(), &st);
  Scan s;
  ScanInput in{fd.get(),
               p,
               Geometry::make(static_cast<std::uint64_t>(st.st_size), D, kManifestBlockSize),
               base_digest,
               base_entries,
               threads};
  scan_changes(in, s.out, [&](ChunkChanges& c) {
    for (auto k : c.changed) s.changed_offsets.push_back(c.chunk.offset + std::uint64_t{k} * D);
    EXPECT_FALSE(c.chunk.data.empty());
  });
  return s;
}

TEST(Scan, SparseImageAgainstNothing) {
  test::TempDir tmp;
  auto img = tmp / "img";
  ASSERT_EQ(::truncate((img).c_str(), 0), -1);  // does not exist yet
  write_random(img, 0, 8192, 1);
  write_random(img, 10 << 20, 4096, 2);  // a block far out, holes in between
  ASSERT_EQ(::truncate(img.c_str(), 12 << 20), 0);
  Digest empty{4096, 0, {}};
  Scan s = scan(img, 4096, &empty, nullptr);
  EXPECT_EQ(s.changed_offsets, (std::vector<std::uint64_t>{0, 4096, 10 << 20}));
  ASSERT_EQ(s.out.digest.size(), 3072u);
  EXPECT_EQ(s.out.digest[5], zero_fast_hash(4096)) << "a hole has the constant hash";
  ASSERT_EQ(s.out.entries.size(), 192u);
  EXPECT_EQ(s.out.entries[1], zero_block_hash(kManifestBlockSize));
  EXPECT_NE(s.out.entries[0], zero_block_hash(kManifestBlockSize));
  EXPECT_EQ(s.out.bytes_hashed_strong, 2u * kManifestBlockSize) << "only blocks with changes";
}

TEST(Scan, FindsExactlyTheChangedBlocks) {
  test::TempDir tmp;
  auto img = tmp / "img";
  write_random(img, 0, 6 << 20, 3);
  Scan first = scan(img, 4096, nullptr, nullptr);
  Digest d{4096, 6 << 20, first.out.digest};
  write_random(img, 4096 * 100, 10, 4);       // inside block 100
  write_random(img, 4096 * 1200 - 5, 10, 5);  // straddles blocks 1199 and 1200 (chunk 1)
  Scan second = scan(img, 4096, &d, &first.out.entries);
  EXPECT_EQ(second.changed_offsets,
            (std::vector<std::uint64_t>{4096 * 100, 4096 * 1199, 4096 * 1200}));
  EXPECT_EQ(second.out.bytes_hashed_strong, 3u * kManifestBlockSize);
  Scan again = scan(img, 4096, nullptr, &first.out.entries);
  EXPECT_EQ(again.out.entries, second.out.entries)
      << "with or without a digest, the manifest entries are the same";
  EXPECT_EQ(again.changed_offsets.size(), 48u)
      << "without a digest a changed 64K block counts whole";
  Digest d2{4096, 6 << 20, second.out.digest};
  Scan none = scan(img, 4096, &d2, &second.out.entries, 1);
  EXPECT_TRUE(none.changed_offsets.empty());
  EXPECT_EQ(none.out.entries, second.out.entries);
}

TEST(Scan, LargeDetectionBlocks) {
  test::TempDir tmp;
  auto img = tmp / "img";
  write_random(img, 0, 8 << 20, 6);
  Scan first = scan(img, 1 << 20, nullptr, nullptr);
  Digest d{1 << 20, 8 << 20, first.out.digest};
  write_random(img, (3 << 20) + 77, 1, 7);
  Scan second = scan(img, 1 << 20, &d, &first.out.entries);
  EXPECT_EQ(second.changed_offsets, (std::vector<std::uint64_t>{3 << 20}));
  Scan reference = scan(img, 4096, nullptr, nullptr);
  EXPECT_EQ(second.out.entries, reference.out.entries);
}

TEST(Scan, GrowingAndShrinkingImages) {
  test::TempDir tmp;
  auto img = tmp / "img";
  write_random(img, 0, 100000, 8);
  Scan first = scan(img, 4096, nullptr, nullptr);
  Digest d{4096, 100000, first.out.digest};
  ASSERT_EQ(::truncate(img.c_str(), 200000), 0);  // zeros appended: nothing to send
  Scan grown = scan(img, 4096, &d, &first.out.entries);
  EXPECT_TRUE(grown.changed_offsets.empty());
  EXPECT_EQ(grown.out.entries, scan(img, 4096, nullptr, nullptr).out.entries);
  ASSERT_EQ(::truncate(img.c_str(), 50000), 0);  // cut inside block 12: that block changes
  Scan shrunk = scan(img, 4096, &d, &first.out.entries);
  EXPECT_EQ(shrunk.changed_offsets, (std::vector<std::uint64_t>{12 * 4096}));
  EXPECT_EQ(shrunk.out.entries, scan(img, 4096, nullptr, nullptr).out.entries);
}

TEST(Scan, ReusedBuffersGiveTheSameHashes) {
  // read_chunk zeroes only around data; a buffer full of an earlier chunk's bytes must still
  // hash every block with data exactly as the file holds it (zero-padded).
  test::TempDir tmp;
  auto img = tmp / "img";
  write_random(img, 100, 50, 1);             // data inside block 0, holes around it
  write_random(img, 65536 * 3 - 10, 20, 2);  // straddles blocks 2 and 3
  ASSERT_EQ(::truncate(img.c_str(), 65536 * 5 + 300), 0);
  write_random(img, 65536 * 5 + 100, 200, 3);  // the last, partial block
  UniqueFd fd = open_fd(img, O_RDONLY);
  Chunk c;
  c.data = AlignedBuffer(kMinChunkSize);
  std::memset(c.data.data(), 0xAA, kMinChunkSize);
  read_chunk(fd.get(), img, 0, 65536 * 5 + 300, kMinChunkSize, 65536, c);
  std::vector<std::byte> file(65536 * 6);
  pread_full(fd.get(), file, 0, img);
  std::vector<char> has = c.data_map(65536, 6);
  EXPECT_EQ(has, (std::vector<char>{1, 0, 1, 1, 0, 1}));
  for (std::size_t b = 0; b < 6; ++b) {
    if (!has[b]) continue;
    EXPECT_EQ(strong_hash(c.bytes(b * 65536, 65536)),
              strong_hash(std::span(file).subspan(b * 65536, 65536)))
        << "block " << b;
  }
}

}  // namespace
}  // namespace coffer::replicate
