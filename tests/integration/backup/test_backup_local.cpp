// coffer backup with a local SOURCE: B runs its own `coffer agent` over a pipe.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>

#include "coffer/snapshot/catalog.hpp"
#include "coffer/snapshot/layout.hpp"
#include "coffer/util/units.hpp"
#include "file_hash.hpp"
#include "run_coffer.hpp"
#include "source_tree.hpp"
#include "temp_dir.hpp"
#include "tree_compare.hpp"

namespace fs = std::filesystem;
using namespace coffer::test;

namespace {
ino_t inode(const fs::path& p) {
  struct stat st {};
  ::lstat(p.c_str(), &st);
  return st.st_ino;
}
}  // namespace

TEST(BackupLocal, SnapshotEqualsTheSourceInEveryField) {
  TempDir t;
  make_fidelity_tree(t / "src");
  fs::create_directories(t / "repo");
  auto r = run_coffer({"--json", "backup", (t / "src").native(), (t / "repo").native()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = backup_json(r);
  EXPECT_EQ(j["host"], "src");  // default name: the source's basename
  fs::path tree = latest_tree(t / "repo", "src");
  ASSERT_FALSE(tree.empty());
  auto diffs = compare_trees(t / "src", tree);
  EXPECT_TRUE(diffs.empty()) << join_lines(diffs);
  // The catalog lists every entry with the BLAKE2b of each regular file's content.
  auto cat = coffer::snapshot::Catalog::load(tree.parent_path() / "catalog");
  EXPECT_EQ(cat.entries().size(), list_tree(t / "src").size() + 1);  // + the root
  for (const auto& p : regular_files(t / "src")) {
    const auto* e = cat.find(p);
    ASSERT_NE(e, nullptr) << p;
    ASSERT_TRUE(e->hash);
    // Files with holes have the block form, which skips zero blocks (docs/formats/catalog.md).
    EXPECT_EQ(coffer::to_hex(e->hash->data(), e->hash->size()),
              e->hash->blocks ? hash_file_blocks(tree / p) : hash_file(tree / p))
        << p;
    EXPECT_EQ(e->hash->blocks, p.rfind("sparse", 0) == 0) << p;
  }
  EXPECT_NE(cat.find("hard-a")->link_group, 0u);
  EXPECT_EQ(cat.find("hard-a")->link_group, cat.find("dir/sub/hard-c")->link_group);

  auto list = run_coffer({"--json", "snapshots", (t / "repo").native()});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_EQ(count_lines(list.out), 1);
  EXPECT_NE(list.out.find("\"host\":\"src\""), std::string::npos);
}

TEST(BackupLocal, SecondRunWithoutChangesLinksEveryFile) {
  TempDir t;
  make_fidelity_tree(t / "src");
  make_bulk_tree(t / "src/bulk", 50, 20000, 7);
  fs::create_directories(t / "repo");
  ASSERT_EQ(
      run_coffer({"backup", (t / "src").native(), (t / "repo").native(), "--name", "h"}).exit_code,
      0);
  auto r =
      run_coffer({"--json", "backup", (t / "src").native(), (t / "repo").native(), "--name", "h"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = backup_json(r);
  fs::path prev = previous_tree(t / "repo", "h"), cur = latest_tree(t / "repo", "h");
  ASSERT_FALSE(prev.empty());
  ASSERT_NE(prev, cur);
  auto files = regular_files(t / "src");
  for (const auto& p : files)
    EXPECT_EQ(inode(prev / p), inode(cur / p)) << p << " is not a hard link";
  EXPECT_EQ(j["data_files"], 0);
  EXPECT_EQ(j["delta_files"], 0);
  EXPECT_EQ(j["copied"], 0);
  EXPECT_LT(j["bytes_to_receiver"].get<std::uint64_t>(), 20000u) << "no file data may travel";
  auto diffs = compare_trees(t / "src", cur);
  EXPECT_TRUE(diffs.empty()) << join_lines(diffs);
}

TEST(BackupLocal, ChangedFilesTravelAsDeltasAndMetadataChangesAreLocalCopies) {
  TempDir t;
  write_random(t / "src/big", 4 << 20, 1);
  write_random(t / "src/meta", 100000, 2);
  write_random(t / "src/gone", 1000, 3);
  write_text(t / "src/small", "small");
  fs::create_directories(t / "repo");
  ASSERT_EQ(run_coffer({"backup", (t / "src").native(), (t / "repo").native()}).exit_code, 0);
  {  // 100 bytes in the middle of a 4 MiB file
    FILE* f = std::fopen((t / "src/big").c_str(), "r+b");
    std::fseek(f, 2000000, SEEK_SET);
    std::fwrite(std::string(100, 'Z').data(), 1, 100, f);
    std::fclose(f);
  }
  fs::permissions(t / "src/meta", fs::perms::owner_read);  // metadata only
  fs::remove(t / "src/gone");
  write_random(t / "src/new", 50000, 4);
  auto r = run_coffer({"--json", "backup", (t / "src").native(), (t / "repo").native()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = backup_json(r);
  EXPECT_EQ(j["delta_files"], 1);
  EXPECT_EQ(j["copied"], 1);
  EXPECT_EQ(j["data_files"], 1);
  EXPECT_EQ(j["linked"], 1);  // small
  // 4 MiB changed by 100 bytes, plus a new 50 kB file: far less than the file on the wire.
  EXPECT_LT(j["bytes_to_receiver"].get<std::uint64_t>(), 50000u + 20000u);
  fs::path prev = previous_tree(t / "repo", "src"), cur = latest_tree(t / "repo", "src");
  EXPECT_NE(inode(prev / "meta"), inode(cur / "meta"));  // a copy: the old snapshot keeps its mode
  EXPECT_EQ(fs::status(prev / "meta").permissions(),
            fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                fs::perms::others_read);
  EXPECT_FALSE(fs::exists(cur / "gone"));
  EXPECT_TRUE(fs::exists(prev / "gone"));
  auto diffs = compare_trees(t / "src", cur);
  EXPECT_TRUE(diffs.empty()) << join_lines(diffs);
}

TEST(BackupLocal, ExcludeIncludeAndExcludeFrom) {
  TempDir t;
  write_text(t / "src/a.tmp", "x");
  write_text(t / "src/keep.tmp", "x");
  write_text(t / "src/cache/c", "x");
  write_text(t / "src/sub/cache", "a file named cache stays");
  write_text(t / "src/sub/x.log", "x");
  write_text(t / "src/b.txt", "x");
  write_text(t / "rules", "# logs\n- *.log\n");
  fs::create_directories(t / "repo");
  auto r = run_coffer({"backup", (t / "src").native(), (t / "repo").native(), "--include",
                       "keep.tmp", "--exclude", "*.tmp", "--exclude", "cache/", "--exclude-from",
                       (t / "rules").native()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto got = list_tree(latest_tree(t / "repo", "src"));
  EXPECT_EQ(got, (std::vector<std::string>{"b.txt", "keep.tmp", "sub", "sub/cache"}));
}

TEST(BackupLocal, EmptyOrMissingSourceFailsAndMakesNoSnapshot) {
  TempDir t;
  fs::create_directories(t / "empty");
  fs::create_directories(t / "repo");
  auto r = run_coffer({"backup", (t / "empty").native(), (t / "repo").native()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("empty"), std::string::npos) << r.err;
  auto m = run_coffer({"backup", (t / "missing").native(), (t / "repo").native(), "--name", "m"});
  EXPECT_EQ(m.exit_code, 1);
  EXPECT_NE(m.err.find("No such file or directory"), std::string::npos) << m.err;
  EXPECT_TRUE(coffer::snapshot::list_complete(t / "repo", "empty").empty());
  EXPECT_FALSE(fs::exists(t / "repo/hosts/empty/.in-progress"));
  EXPECT_FALSE(fs::exists(t / "repo/hosts/m/.in-progress"));
  auto list = run_coffer({"snapshots", (t / "repo").native()});
  EXPECT_EQ(list.exit_code, 0);
  EXPECT_NE(list.out.find("no complete snapshots"), std::string::npos);
}

TEST(BackupLocal, MissingRepositoryAndBadNameAreErrors) {
  TempDir t;
  write_text(t / "src/f", "x");
  EXPECT_EQ(run_coffer({"backup", (t / "src").native(), (t / "nope").native()}).exit_code, 10);
  fs::create_directories(t / "repo");
  EXPECT_EQ(run_coffer({"backup", (t / "src").native(), (t / "repo").native(), "--name", "../x"})
                .exit_code,
            2);
}

TEST(BackupLocal, FullLinkCountFallsBackToACopy) {
  TempDir t;
  write_text(t / "src/popular", "linked too often");
  write_text(t / "src/other", "x");
  fs::create_directories(t / "repo");
  ASSERT_EQ(run_coffer({"backup", (t / "src").native(), (t / "repo").native()}).exit_code, 0);
  // Fill the link count of the snapshot's file (ext4 stops at 65000).
  fs::path first = latest_tree(t / "repo", "src") / "popular";
  fs::create_directories(t / "repo/pad");
  int made = 0;
  for (; made < 70000; ++made)
    if (::link(first.c_str(), (t / "repo/pad" / std::to_string(made)).c_str()) != 0) break;
  ASSERT_EQ(errno, EMLINK) << "the file system has no link limit to test against";
  auto r = run_coffer({"--json", "backup", (t / "src").native(), (t / "repo").native()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = backup_json(r);
  EXPECT_EQ(j["copied"], 1);
  EXPECT_EQ(j["linked"], 1);
  EXPECT_EQ(j["data_files"], 0);  // a local copy: nothing travels
  fs::path cur = latest_tree(t / "repo", "src");
  EXPECT_NE(inode(first), inode(cur / "popular"));
  auto diffs = compare_trees(t / "src", cur);
  EXPECT_TRUE(diffs.empty()) << join_lines(diffs);
  fs::remove_all(t / "repo/pad");
}

TEST(BackupLocal, OneFileSystemKeepsMountPointsEmpty) {
  TempDir t;
  write_text(t / "src/top", "x");
  fs::create_directories(t / "src/mnt");
  if (::mount("coffer-test", (t / "src/mnt").c_str(), "tmpfs", 0, "size=1m") != 0)
    GTEST_SKIP() << "cannot mount a tmpfs here: " << std::strerror(errno);
  write_text(t / "src/mnt/on-another-fs", "x");
  fs::create_directories(t / "repo");
  auto x = run_coffer({"backup", (t / "src").native(), (t / "repo").native(), "--name", "x", "-x"});
  auto all = run_coffer({"backup", (t / "src").native(), (t / "repo").native(), "--name", "all"});
  ::umount((t / "src/mnt").c_str());
  ASSERT_EQ(x.exit_code, 0) << x.err;
  ASSERT_EQ(all.exit_code, 0) << all.err;
  EXPECT_EQ(list_tree(latest_tree(t / "repo", "x")), (std::vector<std::string>{"mnt", "top"}));
  EXPECT_EQ(list_tree(latest_tree(t / "repo", "all")),
            (std::vector<std::string>{"mnt", "mnt/on-another-fs", "top"}));
}

TEST(BackupLocal, AnXattrOrAclChangeAloneIsALocalCopy) {
  TempDir t;
  write_random(t / "src/tagged", 200000, 9);
  fs::create_directories(t / "repo");
  ASSERT_EQ(run_coffer({"backup", (t / "src").native(), (t / "repo").native()}).exit_code, 0);
  ASSERT_EQ(::lsetxattr((t / "src/tagged").c_str(), "user.tag", "v2", 2, 0), 0);
  timespec keep[2] = {{0, UTIME_OMIT}, {0, UTIME_OMIT}};
  struct stat st {};
  ::lstat((t / "src/tagged").c_str(), &st);
  keep[1] = st.st_mtim;
  ::utimensat(AT_FDCWD, (t / "src/tagged").c_str(), keep, AT_SYMLINK_NOFOLLOW);
  auto r = run_coffer({"--json", "backup", (t / "src").native(), (t / "repo").native()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = backup_json(r);
  EXPECT_EQ(j["copied"], 1);
  EXPECT_EQ(j["linked"], 0);
  EXPECT_EQ(j["data_files"], 0);
  EXPECT_LT(j["bytes_to_receiver"].get<std::uint64_t>(), 1000u);
  auto diffs = compare_trees(t / "src", latest_tree(t / "repo", "src"));
  EXPECT_TRUE(diffs.empty()) << join_lines(diffs);
  char v[8] = {};
  EXPECT_LT(
      ::lgetxattr((previous_tree(t / "repo", "src") / "tagged").c_str(), "user.tag", v, sizeof v),
      0)
      << "the previous snapshot must keep its old xattrs";
}
