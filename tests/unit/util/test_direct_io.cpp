// Direct I/O helpers: every test runs twice, once with O_DIRECT (where the test directory's file
// system allows it) and once on the buffered fallback; both must leave exactly the same bytes.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <cstdint>
#include <vector>

#include "coffer/util/direct_io.hpp"
#include "coffer/util/error.hpp"
#include "coffer/util/fd.hpp"
#include "temp_dir.hpp"

using namespace coffer;
using coffer::test::random_bytes;
using coffer::test::TempDir;

namespace {

std::vector<std::byte> file_bytes(int fd) {
  struct stat st {};
  EXPECT_EQ(::fstat(fd, &st), 0);
  std::vector<std::byte> v(static_cast<std::size_t>(st.st_size));
  EXPECT_EQ(pread_full(fd, v, 0, "test"), v.size());
  return v;
}

class DirectIo : public ::testing::TestWithParam<Io> {
 protected:
  UniqueFd open_file(const char* name, int flags = O_RDWR | O_CREAT | O_TRUNC) {
    return open_fd(dir / name, flags, 0600);
  }
  TempDir dir;
};

}  // namespace

TEST(AlignedBuffer, IsAlignedAndOnlyGrows) {
  AlignedBuffer b(100);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(b.data()) % kDirectAlign, 0u);
  EXPECT_EQ(b.size(), kDirectAlign);
  b.reserve(3 * kDirectAlign + 1);
  EXPECT_EQ(b.size(), 4 * kDirectAlign);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(b.data()) % kDirectAlign, 0u);
  b.reserve(10);
  EXPECT_EQ(b.size(), 4 * kDirectAlign);
  b.reserve(3 << 20);  // large buffers are aligned to huge pages
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(b.data()) % (2 << 20), 0u);
  EXPECT_EQ(b.size(), 4u << 20);
}

TEST_P(DirectIo, AppenderWritesOddSizesExactlyWithoutPadding) {
  UniqueFd fd = open_file("journal");
  DirectAppender out(fd.get(), dir / "journal", 0, GetParam());
  std::vector<std::byte> expect;
  unsigned seed = 1;
  // Sizes straddle block and buffer (4 MiB) boundaries; flushes in between leave partial blocks.
  for (std::size_t n : {1ul, 4095ul, 4097ul, 65536ul, 5ul << 20, 12345ul, 3ul}) {
    auto chunk = random_bytes(n, seed++);
    out.append(chunk);
    expect.insert(expect.end(), chunk.begin(), chunk.end());
    EXPECT_EQ(out.end(), expect.size());
    if (seed % 2) out.flush();
  }
  out.flush();
  EXPECT_EQ(file_bytes(fd.get()), expect);
}

TEST_P(DirectIo, AppenderResumesAtEndAndDropsTheRest) {
  UniqueFd fd = open_file("journal");
  auto old = random_bytes(100000, 7);
  pwrite_all(fd.get(), old, 0, "journal");
  const std::uint64_t keep = 70001;  // not block-aligned: the partial block must be read back
  DirectAppender out(fd.get(), dir / "journal", keep, GetParam());
  auto more = random_bytes(9000, 8);
  out.append(more);
  out.flush();
  std::vector<std::byte> expect(old.begin(), old.begin() + keep);
  expect.insert(expect.end(), more.begin(), more.end());
  EXPECT_EQ(file_bytes(fd.get()), expect);
}

TEST_P(DirectIo, AppenderTruncateThenAppendRewritesTheTail) {
  UniqueFd fd = open_file("journal");
  DirectAppender out(fd.get(), dir / "journal", 0, GetParam());
  auto a = random_bytes(50000, 1), b = random_bytes(20000, 2);
  out.append(a);
  out.truncate(30001);  // flushes, then drops everything after byte 30001
  EXPECT_EQ(out.end(), 30001u);
  out.append(b);
  out.flush();
  std::vector<std::byte> expect(a.begin(), a.begin() + 30001);
  expect.insert(expect.end(), b.begin(), b.end());
  EXPECT_EQ(file_bytes(fd.get()), expect);
}

TEST_P(DirectIo, ReaderReturnsAnyRangeAndStopsAtEnd) {
  UniqueFd fd = open_file("data");
  auto data = random_bytes((9 << 20) + 777, 3);
  pwrite_all(fd.get(), data, 0, "data");
  DirectReader in(fd.get(), dir / "data", GetParam());
  // Front to back like a journal scan, with ranges that cross chunk boundaries, then backwards.
  std::vector<std::pair<std::uint64_t, std::size_t>> ranges{
      {0, 64},     {64, 65536},         {(4 << 20) - 10, 100}, {5 << 20, 4 << 20},
      {100, 4097}, {data.size() - 5, 5}};
  for (auto [pos, len] : ranges) {
    auto got = in.read(pos, len);
    ASSERT_EQ(got.size(), len) << "at " << pos;
    EXPECT_TRUE(std::equal(got.begin(), got.end(), data.begin() + static_cast<std::ptrdiff_t>(pos)))
        << "at " << pos;
  }
  EXPECT_EQ(in.read(data.size() - 3, 10).size(), 3u);  // short at the end of the file
  EXPECT_TRUE(in.read(data.size() + 4096, 10).empty());
}

TEST_P(DirectIo, WriterPutsAlignedAndUnalignedBlocksInPlace) {
  UniqueFd fd = open_file("image");
  auto base = random_bytes(1 << 20, 4);
  pwrite_all(fd.get(), base, 0, "image");
  DirectWriter out(fd.get(), dir / "image", GetParam());
  auto big = random_bytes(256 << 10, 5), odd = random_bytes(1000, 6);
  out.pwrite(big, 65536);
  out.pwrite(odd, 4097);
  std::copy(big.begin(), big.end(), base.begin() + 65536);
  std::copy(odd.begin(), odd.end(), base.begin() + 4097);
  EXPECT_EQ(file_bytes(fd.get()), base);
}

INSTANTIATE_TEST_SUITE_P(BothPaths, DirectIo,
                         ::testing::Values(Io::direct_if_possible, Io::buffered),
                         [](const auto& p) {
                           return p.param == Io::buffered ? "buffered" : "direct";
                         });

TEST(DirectIoFallback, BufferedModeNeverOpensDirect) {
  TempDir dir;
  UniqueFd fd = open_fd(dir / "f", O_RDWR | O_CREAT, 0600);
  EXPECT_FALSE(DirectReader(fd.get(), dir / "f", Io::buffered).direct());
  EXPECT_FALSE(DirectWriter(fd.get(), dir / "f", Io::buffered).direct());
  EXPECT_FALSE(DirectAppender(fd.get(), dir / "f", 0, Io::buffered).direct());
}
