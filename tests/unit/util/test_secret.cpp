#include <gtest/gtest.h>
#include <unistd.h>

#include "coffer/util/error.hpp"
#include "coffer/util/secret.hpp"
#include "temp_dir.hpp"

using namespace coffer;
using coffer::test::TempDir;
using coffer::test::write_text;

TEST(Secret, PassphraseFileDropsOneTrailingNewline) {
  TempDir dir;
  write_text(dir / "p", "correct horse\n\n", 0600);
  Secret s = read_secret_file(dir / "p", true);
  EXPECT_EQ(std::string(s.chars(), s.size()), "correct horse\n");
}

TEST(Secret, KeyFileKeepsEveryByte) {
  TempDir dir;
  std::string raw("\0\n\xff\n", 4);
  write_text(dir / "k", raw, 0400);
  Secret s = read_secret_file(dir / "k", false);
  EXPECT_EQ(std::string(s.chars(), s.size()), raw);
}

TEST(Secret, EmptyAndOversizedFilesAreRejected) {
  TempDir dir;
  write_text(dir / "empty", "", 0600);
  EXPECT_THROW(read_secret_file(dir / "empty", true), Error);
  write_text(dir / "big", std::string(9000, 'a'), 0600);
  EXPECT_THROW(read_secret_file(dir / "big", true), Error);
}

TEST(Secret, RandomAndMove) {
  Secret a = Secret::random(64);
  Secret b = Secret::random(64);
  EXPECT_FALSE(secret_equal(a.bytes(), b.bytes()));
  Secret c = Secret::copy_of(a.bytes());
  EXPECT_TRUE(secret_equal(a.bytes(), c.bytes()));
  Secret d = std::move(c);
  EXPECT_EQ(c.size(), 0u);
  EXPECT_TRUE(secret_equal(a.bytes(), d.bytes()));
}

TEST(Secret, PipesAreReadWithoutKnowingTheirSize) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  ASSERT_EQ(::write(fds[1], "key bytes", 9), 9);
  ::close(fds[1]);
  Secret s = read_secret_fd(fds[0], "pipe", false, 8 << 20);
  ::close(fds[0]);
  EXPECT_EQ(std::string(s.chars(), s.size()), "key bytes");
}

TEST(Secret, FileJustBelowTheLimitIsReadWhole) {
  TempDir dir;
  write_text(dir / "k", std::string(8191, 'k'), 0600);
  EXPECT_EQ(read_secret_file(dir / "k", false, 8192).size(), 8191u);
  write_text(dir / "k", std::string(8193, 'k'), 0600);
  EXPECT_THROW(read_secret_file(dir / "k", false, 8192), Error);
}
