// Hard-link groups at the link limit: when the inode a group shares with the previous snapshot
// is full (EMLINK), the names of one source inode stay one inode in the new snapshot.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>
#include <map>
#include <set>

#include "run_coffer.hpp"
#include "source_tree.hpp"
#include "temp_dir.hpp"
#include "tree_compare.hpp"

namespace fs = std::filesystem;
using namespace coffer::test;

namespace {

struct stat stat_of(const fs::path& p) {
  struct stat st {};
  ::lstat(p.c_str(), &st);
  return st;
}

// Links `file` from a pad directory until the file system refuses (EMLINK), then removes
// `room` of them again. Returns false if there is no limit to reach.
bool fill_link_count(const fs::path& file, const fs::path& pad, int room) {
  fs::create_directories(pad);
  int made = 0;
  for (; made < 200000; ++made)
    if (::link(file.c_str(), (pad / std::to_string(made)).c_str()) != 0) break;
  if (errno != EMLINK) return false;
  for (int i = 0; i < room; ++i) fs::remove(pad / std::to_string(--made));
  return true;
}

}  // namespace

TEST(BackupLinks, GroupStaysOneInodeWhenThePreviousCopyRunsOutOfLinks) {
  TempDir t;
  constexpr int kNames = 10;
  write_text(t / "src/g/n0", "one inode, ten names");
  for (int i = 1; i < kNames; ++i)
    ASSERT_EQ(::link((t / "src/g/n0").c_str(), (t / "src/g" / ("n" + std::to_string(i))).c_str()),
              0);
  write_text(t / "src/other", "x");
  fs::create_directories(t / "repo");
  ASSERT_EQ(run_coffer({"backup", (t / "src").native(), (t / "repo").native()}).exit_code, 0);
  fs::path first = latest_tree(t / "repo", "src");
  ino_t old_inode = stat_of(first / "g/n0").st_ino;
  // Room for 4 more links: the next run links n0 and 3 more names, then meets EMLINK.
  ASSERT_TRUE(fill_link_count(first / "g/n0", t / "repo/pad", 4))
      << "no link limit to test against";

  auto r = run_coffer({"--json", "backup", (t / "src").native(), (t / "repo").native()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = backup_json(r);
  EXPECT_EQ(j["data_files"], 0) << "a full link count is a local matter: nothing travels";
  fs::path cur = latest_tree(t / "repo", "src");
  std::map<ino_t, int> inodes;
  for (int i = 0; i < kNames; ++i) ++inodes[stat_of(cur / "g" / ("n" + std::to_string(i))).st_ino];
  EXPECT_EQ(inodes.size(), 1u) << "the group was split over " << inodes.size() << " inodes";
  EXPECT_EQ(inodes.count(old_inode), 0u);
  EXPECT_EQ(stat_of(cur / "g/n0").st_nlink, static_cast<nlink_t>(kNames));
  auto diffs = compare_trees(t / "src", cur);  // the hard-link structure included
  EXPECT_TRUE(diffs.empty()) << join_lines(diffs);
  // The previous snapshot is untouched: its names still share the old inode.
  for (int i = 0; i < kNames; ++i)
    EXPECT_EQ(stat_of(first / "g" / ("n" + std::to_string(i))).st_ino, old_inode);
  fs::remove_all(t / "repo/pad");

  // The next run links the whole group to the fresh inode.
  auto again = run_coffer({"--json", "backup", (t / "src").native(), (t / "repo").native()});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(backup_json(again)["copied"], 0);
  EXPECT_EQ(stat_of(latest_tree(t / "repo", "src") / "g/n5").st_ino, stat_of(cur / "g/n0").st_ino);
}
