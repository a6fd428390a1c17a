// coffer restore: exact round trips, sub-paths, filters, older snapshots, overwrite modes.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "coffer/util/fd.hpp"
#include "file_hash.hpp"
#include "restore_support.hpp"
#include "run_coffer.hpp"
#include "source_tree.hpp"
#include "temp_dir.hpp"
#include "tree_compare.hpp"

namespace fs = std::filesystem;
using namespace coffer::test;

TEST(Restore, RoundTripOfEveryFileTypeIsExact) {
  TempDir t;
  make_fidelity_tree(t / "src");
  backup(t / "src", t / "repo");
  auto r = run_coffer(
      {"--json", "restore", (t / "repo").native(), "latest", (t / "out").native(), "--verify"});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  auto diffs = compare_trees(t / "src", t / "out");
  EXPECT_TRUE(diffs.empty()) << join_lines(diffs);
  EXPECT_EQ(rsync_changes(t / "src", t / "out"), "");
  EXPECT_NE(r.out.find("\"type\":\"summary\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"verified\":" + std::to_string(count_regular(t / "src"))),
            std::string::npos)
      << r.out;
  // No temporary is left in TARGET.
  for (const auto& name : entries_of(t / "out"))
    EXPECT_EQ(name.find(".coffer-restore"), std::string::npos);
}

// The vault is one file system and TARGET usually another: copy_file_range refuses to cross
// file systems of different types (EXDEV), and the restore copies through a buffer instead.
TEST(Restore, ToAnotherFileSystemIsExact) {
  TempDir t;
  struct stat here {
  }, shm{};
  if (::stat(t.path().c_str(), &here) != 0 || ::stat("/dev/shm", &shm) != 0 ||
      here.st_dev == shm.st_dev)
    GTEST_SKIP() << "/dev/shm is not another file system here";
  make_fidelity_tree(t / "src");
  backup(t / "src", t / "repo");
  fs::path out = fs::path("/dev/shm") / ("coffer-restore-test-" + std::to_string(::getpid()));
  fs::remove_all(out);
  auto r = run_coffer({"restore", (t / "repo").native(), "latest", out.native(), "--verify"});
  std::vector<std::string> diffs;
  if (r.exit_code == 0) diffs = compare_trees(t / "src", out);
  fs::remove_all(out);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(diffs.empty()) << join_lines(diffs);
}

TEST(Restore, SubPathRestoresThatDirectoryExactly) {
  TempDir t;
  make_fidelity_tree(t / "src");
  backup(t / "src", t / "repo");
  auto r = run_coffer({"restore", (t / "repo").native(), "h/latest:dir", (t / "out").native()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // dir/hard-b and dir/sub/hard-c are one inode in the source and must stay one; hard-a is outside.
  auto diffs = compare_trees(t / "src/dir", t / "out");
  for (const auto& d : diffs) EXPECT_NE(d.find("hard link group not kept"), std::string::npos) << d;
  EXPECT_EQ(fs::hard_link_count(t / "out/hard-b"), 2u);
  struct stat b {
  }, c{};
  ::lstat((t / "out/hard-b").c_str(), &b);
  ::lstat((t / "out/sub/hard-c").c_str(), &c);
  EXPECT_EQ(b.st_ino, c.st_ino);
  EXPECT_EQ(hash_file(t / "out/random.bin"), hash_file(t / "src/dir/random.bin"));
  // A single file goes into TARGET under its name.
  auto f =
      run_coffer({"restore", (t / "repo").native(), "latest:dir/setuid", (t / "one").native()});
  ASSERT_EQ(f.exit_code, 0) << f.err;
  EXPECT_EQ(entries_of(t / "one"), std::vector<std::string>{"setuid"});
  struct stat s {};
  ::lstat((t / "one/setuid").c_str(), &s);
  EXPECT_EQ(s.st_mode & 07777, 04755u);
}

TEST(Restore, IncludeAndExcludeUseTheBackupsPatterns) {
  TempDir t;
  make_fidelity_tree(t / "src");
  backup(t / "src", t / "repo");
  auto r = run_coffer({"restore", (t / "repo").native(), "latest", (t / "out").native(),
                       "--exclude", "*.bin", "--exclude", "/sticky/", "--exclude", "sparse*"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> expected;
  for (const auto& p : list_tree(t / "src"))
    if (p != "dir/random.bin" && p != "sticky" && p.rfind("sparse", 0) != 0) expected.push_back(p);
  EXPECT_EQ(list_tree(t / "out"), expected);
  EXPECT_EQ(hash_file(t / "out/plain.txt"), hash_file(t / "src/plain.txt"));
  // First match wins: keep dir/ and what is below it, exclude everything else.
  auto only = run_coffer({"restore", (t / "repo").native(), "latest", (t / "only").native(),
                          "--include", "/dir/", "--include", "/dir/**", "--exclude", "*"});
  ASSERT_EQ(only.exit_code, 0) << only.err;
  EXPECT_EQ(entries_of(t / "only"), std::vector<std::string>{"dir"});
  auto diffs = compare_trees(t / "src/dir", t / "only/dir");
  for (const auto& d : diffs) EXPECT_NE(d.find("hard link group not kept"), std::string::npos) << d;
}

TEST(Restore, OlderSnapshotRestoresAsItWas) {
  TempDir t;
  make_bulk_tree(t / "src", 30, 5000, 3);
  write_text(t / "src/keep.txt", "first version\n");
  ASSERT_EQ(
      coffer::run_process({"cp", "-a", (t / "src").native(), (t / "orig").native()}).exit_code, 0);
  std::string first = backup(t / "src", t / "repo");
  sleep(1);  // the next snapshot gets another name
  write_text(t / "src/keep.txt", "second version, longer\n");
  fs::remove(t / "src/d0/file0");
  write_text(t / "src/new.txt", "new\n");
  std::string second = backup(t / "src", t / "repo");
  ASSERT_NE(first, second);
  auto r = run_coffer({"restore", (t / "repo").native(), first, (t / "out").native()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto diffs = compare_trees(t / "orig", t / "out");
  EXPECT_TRUE(diffs.empty()) << join_lines(diffs);
  EXPECT_EQ(rsync_changes(t / "orig", t / "out"), "");
  auto latest =
      run_coffer({"restore", (t / "repo").native(), "h/" + second, (t / "out2").native()});
  ASSERT_EQ(latest.exit_code, 0) << latest.err;
  EXPECT_EQ(rsync_changes(t / "src", t / "out2"), "");
}

TEST(Restore, NonEmptyTargetIsRefusedUnlessOverwriteIsChosen) {
  TempDir t;
  make_bulk_tree(t / "src", 10, 1000, 5);
  backup(t / "src", t / "repo");
  write_text(t / "out/mine.txt", "user data\n");
  auto r = run_coffer({"restore", (t / "repo").native(), "latest", (t / "out").native()});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("not empty"), std::string::npos) << r.err;
  EXPECT_EQ(entries_of(t / "out"), std::vector<std::string>{"mine.txt"});
  auto d =
      run_coffer({"restore", (t / "repo").native(), "latest", (t / "out").native(), "--delete"});
  EXPECT_EQ(d.exit_code, 2) << d.err;
  // --overwrite never keeps what is there; --delete then removes what the snapshot lacks.
  write_text(t / "out/d0/file0", "changed");
  auto n = run_coffer(
      {"restore", (t / "repo").native(), "latest", (t / "out").native(), "--overwrite", "never"});
  ASSERT_EQ(n.exit_code, 0) << n.err;
  EXPECT_EQ(coffer::read_file(t / "out/d0/file0"), "changed");
  EXPECT_TRUE(fs::exists(t / "out/mine.txt"));
  auto a = run_coffer({"restore", (t / "repo").native(), "latest", (t / "out").native(),
                       "--overwrite", "if-changed", "--delete"});
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_EQ(rsync_changes(t / "src", t / "out"), "");
  EXPECT_TRUE(compare_trees(t / "src", t / "out").empty());
}
