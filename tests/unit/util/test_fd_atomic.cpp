#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <cstring>

#include "coffer/util/atomic_file.hpp"
#include "coffer/util/error.hpp"
#include "coffer/util/fd.hpp"
#include "temp_dir.hpp"

using namespace coffer;
using coffer::test::TempDir;

TEST(UniqueFd, MoveTransfersOwnershipAndCloses) {
  TempDir dir;
  UniqueFd a = open_fd(dir / "f", O_RDWR | O_CREAT, 0600);
  int raw = a.get();
  UniqueFd b = std::move(a);
  EXPECT_FALSE(a);
  EXPECT_EQ(b.get(), raw);
  b.reset();
  EXPECT_EQ(::fcntl(raw, F_GETFD), -1);  // closed
}

TEST(UniqueFd, OpenMissingNamesPath) {
  try {
    open_fd("/nonexistent/dir/file", O_RDONLY);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "open /nonexistent/dir/file: No such file or directory");
  }
}

TEST(AtomicFile, CommitReplacesWithModeAndContent) {
  TempDir dir;
  write_file_atomic(dir / "state", "one\n", 0640);
  write_file_atomic(dir / "state", "two\n", 0600);
  EXPECT_EQ(read_file(dir / "state"), "two\n");
  struct stat st {};
  ASSERT_EQ(::stat((dir / "state").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  // No temporaries left behind.
  int entries = 0;
  for (auto& e : std::filesystem::directory_iterator(dir.path())) (void)e, ++entries;
  EXPECT_EQ(entries, 1);
}

TEST(AtomicFile, UncommittedLeavesOldFileAndNoTemp) {
  TempDir dir;
  write_file_atomic(dir / "state", "old", 0644);
  {
    AtomicFile f(dir / "state", 0644);
    f.write(std::string_view("new but abandoned"));
  }
  EXPECT_EQ(read_file(dir / "state"), "old");
  int entries = 0;
  for (auto& e : std::filesystem::directory_iterator(dir.path())) (void)e, ++entries;
  EXPECT_EQ(entries, 1);
}

TEST(Fd, PreadPwriteRoundTripAtOffset) {
  TempDir dir;
  UniqueFd fd = open_fd(dir / "f", O_RDWR | O_CREAT, 0600);
  std::string data = "hello";
  pwrite_all(fd.get(), std::as_bytes(std::span(data)), 1 << 20, dir / "f");
  std::array<std::byte, 5> back{};
  EXPECT_EQ(pread_full(fd.get(), back, 1 << 20, dir / "f"), 5u);
  EXPECT_EQ(std::memcmp(back.data(), "hello", 5), 0);
  EXPECT_EQ(pread_full(fd.get(), back, (1 << 20) + 5, dir / "f"), 0u);  // EOF
}
