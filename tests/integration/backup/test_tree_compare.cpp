// The tree walker the backup tests rely on must see each kind of difference, or an "exact"
// snapshot would prove nothing.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "source_tree.hpp"
#include "temp_dir.hpp"
#include "tree_compare.hpp"

namespace fs = std::filesystem;
using namespace coffer::test;

namespace {
// A faithful copy made by the system's own tool, as the baseline.
void copy_tree(const fs::path& from, const fs::path& to) {
  auto r = coffer::run_process({"cp", "-a", "--sparse=always", from.native(), to.native()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
}

bool mentions(const std::vector<std::string>& diffs, const std::string& word) {
  for (const auto& d : diffs)
    if (d.find(word) != std::string::npos) return true;
  return false;
}
}  // namespace

TEST(TreeCompare, SeesEveryKindOfDifference) {
  TempDir t;
  make_fidelity_tree(t / "a");
  copy_tree(t / "a", t / "b");
  ASSERT_TRUE(compare_trees(t / "a", t / "b").empty())
      << join_lines(compare_trees(t / "a", t / "b"));
  struct Case {
    const char* what;
    std::function<void(const fs::path&)> change;
  };
  std::vector<Case> cases = {
      {"mode", [](const fs::path& b) { ::chmod((b / "dir/setuid").c_str(), 0755); }},
      {"uid", [](const fs::path& b) { ::lchown((b / "owned").c_str(), 1, -1); }},
      {"mtime",
       [](const fs::path& b) {
         timespec ts[2] = {{0, UTIME_OMIT}, {1600000000, 1}};
         ::utimensat(AT_FDCWD, (b / "plain.txt").c_str(), ts, AT_SYMLINK_NOFOLLOW);
       }},
      {"content",
       [](const fs::path& b) {
         int fd = ::open((b / "dir/random.bin").c_str(), O_WRONLY);
         ::pwrite(fd, "!", 1, 5);
         ::close(fd);
       }},
      {"xattrs",
       [](const fs::path& b) {
         ::lremovexattr((b / "acl-file").c_str(), "system.posix_acl_access");
       }},
      {"target",
       [](const fs::path& b) {
         fs::remove(b / "dangling");
         fs::create_symlink("elsewhere", b / "dangling");
       }},
      {"data extents",
       [](const fs::path& b) {
         auto r = coffer::run_process(
             {"cp", "--sparse=never", (b / "sparse").native(), (b / "sparse.tmp").native()});
         fs::rename(b / "sparse.tmp", b / "sparse");
       }},
      {"hard link",
       [](const fs::path& b) {
         fs::copy_file(b / "hard-a", b / "hard-a.tmp");
         fs::rename(b / "hard-a.tmp", b / "dir/hard-b");
       }},
      {"missing", [](const fs::path& b) { fs::remove(b / "empty"); }},
      {"type",
       [](const fs::path& b) {
         fs::remove(b / "fifo");
         write_text(b / "fifo", "");
       }},
  };
  int n = 0;
  for (const auto& c : cases) {
    fs::path b = t / ("case" + std::to_string(n++));
    copy_tree(t / "a", b);
    c.change(b);
    auto diffs = compare_trees(t / "a", b);
    EXPECT_TRUE(mentions(diffs, c.what)) << c.what << " not detected:\n" << join_lines(diffs);
  }
}
