// Sparse files through the real binary: a hole costs nothing on A or B, however long it is,
// and the snapshot's copy keeps its holes.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bounded_run.hpp"
#include "coffer/snapshot/catalog.hpp"
#include "coffer/snapshot/content_hash.hpp"
#include "coffer/util/fd.hpp"
#include "file_hash.hpp"
#include "source_tree.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;
using namespace coffer::test;
using namespace std::chrono_literals;

namespace {

constexpr off_t kSize = off_t{100} << 30;  // 100 GiB apparent size
constexpr off_t kDataAt = (off_t{50} << 30) + 12345;

void write_byte(const fs::path& p, char c) {
  coffer::UniqueFd fd = coffer::open_fd(p, O_WRONLY);
  ASSERT_EQ(::pwrite(fd.get(), &c, 1, kDataAt), 1);
}

std::string read_around(const fs::path& p) {
  coffer::UniqueFd fd = coffer::open_fd(p, O_RDONLY);
  std::string buf(8192, '?');
  ssize_t n = ::pread(fd.get(), buf.data(), buf.size(), kDataAt - 4096);
  buf.resize(n < 0 ? 0 : static_cast<std::size_t>(n));
  return buf;
}

struct stat stat_of(const fs::path& p) {
  struct stat st {};
  ::lstat(p.c_str(), &st);
  return st;
}

// The snapshot's copy: the same size, few blocks, the data byte where it was, zeros around it.
void expect_sparse_copy(const fs::path& copy, const fs::path& source) {
  struct stat st = stat_of(copy);
  EXPECT_EQ(st.st_size, kSize) << copy;
  EXPECT_LT(static_cast<std::uint64_t>(st.st_blocks) * 512, 1u << 20) << copy << " is not sparse";
  EXPECT_EQ(read_around(copy), read_around(source)) << copy;
}

}  // namespace

TEST(BackupSparse, HundredGibibyteHoleCostsNothingOnEitherSide) {
  TempDir t;
  fs::create_directories(t / "src");
  fs::create_directories(t / "repo");
  {
    coffer::UniqueFd fd = coffer::open_fd(t / "src/disk.img", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ASSERT_EQ(::ftruncate(fd.get(), kSize), 0);
  }
  write_byte(t / "src/disk.img", 'x');
  write_text(t / "src/small", "a file without holes");
  // Generous for a loaded CI machine: without hole handling B hashes 100 GiB of zeros (minutes).
  auto first = run_coffer_bounded(
      {"backup", (t / "src").native(), (t / "repo").native(), "--name", "s"}, 30s);
  ASSERT_TRUE(first.exit_code) << "first backup still running after 30 s: " << first.err;
  ASSERT_EQ(*first.exit_code, 0) << first.err;
  fs::path tree1 = latest_tree(t / "repo", "s");
  expect_sparse_copy(tree1 / "disk.img", t / "src/disk.img");
  EXPECT_EQ(read_around(tree1 / "disk.img")[4096], 'x');

  // The catalog's hash (computed by B as the data arrived) equals the hash of the file itself.
  auto cat = coffer::snapshot::Catalog::load(tree1.parent_path() / "catalog");
  const auto* e = cat.find("disk.img");
  ASSERT_TRUE(e && e->hash);
  EXPECT_TRUE(e->hash->blocks);
  coffer::UniqueFd src = coffer::open_fd(t / "src/disk.img", O_RDONLY);
  EXPECT_EQ(*e->hash, coffer::snapshot::hash_fd(src.get(), t / "src/disk.img", true));

  // The one byte changes: the second run sends it again, still in seconds.
  write_byte(t / "src/disk.img", 'y');
  auto second = run_coffer_bounded(
      {"backup", (t / "src").native(), (t / "repo").native(), "--name", "s"}, 30s);
  ASSERT_TRUE(second.exit_code) << "second backup still running after 30 s: " << second.err;
  ASSERT_EQ(*second.exit_code, 0) << second.err;
  fs::path tree2 = latest_tree(t / "repo", "s");
  ASSERT_NE(tree1, tree2);
  expect_sparse_copy(tree2 / "disk.img", t / "src/disk.img");
  EXPECT_EQ(read_around(tree2 / "disk.img")[4096], 'y');
  EXPECT_EQ(read_around(tree1 / "disk.img")[4096], 'x') << "the previous snapshot changed";
  auto cat2 = coffer::snapshot::Catalog::load(tree2.parent_path() / "catalog");
  EXPECT_NE(*cat2.find("disk.img")->hash, *e->hash);

  // Unchanged: a hard link, nothing read.
  auto third = run_coffer_bounded(
      {"backup", (t / "src").native(), (t / "repo").native(), "--name", "s"}, 30s);
  ASSERT_TRUE(third.exit_code) << "third backup still running after 30 s: " << third.err;
  ASSERT_EQ(*third.exit_code, 0) << third.err;
  fs::path tree3 = latest_tree(t / "repo", "s");
  EXPECT_EQ(stat_of(tree3 / "disk.img").st_ino, stat_of(tree2 / "disk.img").st_ino);

  // Only the mode changes: a local copy on B, which keeps the holes.
  ASSERT_EQ(::chmod((t / "src/disk.img").c_str(), 0600), 0);
  auto chmodded = run_coffer_bounded(
      {"backup", (t / "src").native(), (t / "repo").native(), "--name", "s"}, 30s);
  ASSERT_TRUE(chmodded.exit_code) << "backup after chmod still running after 30 s: "
                                  << chmodded.err;
  ASSERT_EQ(*chmodded.exit_code, 0) << chmodded.err;
  fs::path tree_mode = latest_tree(t / "repo", "s");
  EXPECT_NE(stat_of(tree_mode / "disk.img").st_ino, stat_of(tree3 / "disk.img").st_ino);
  EXPECT_EQ(stat_of(tree_mode / "disk.img").st_mode & 07777, 0600u);
  expect_sparse_copy(tree_mode / "disk.img", t / "src/disk.img");

  // A dense new version of a sparse file: no librsync signature of the 100 GiB previous
  // version (it would read every byte of the hole); the data travels.
  write_random(t / "src/disk.img", 1 << 20, 5);
  auto fourth = run_coffer_bounded(
      {"backup", (t / "src").native(), (t / "repo").native(), "--name", "s"}, 30s);
  ASSERT_TRUE(fourth.exit_code) << "fourth backup still running after 30 s: " << fourth.err;
  ASSERT_EQ(*fourth.exit_code, 0) << fourth.err;
  fs::path tree4 = latest_tree(t / "repo", "s");
  EXPECT_EQ(hash_file(tree4 / "disk.img"), hash_file(t / "src/disk.img"));
}
