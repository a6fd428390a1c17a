// coffer ls / find / diff: answers from the catalogs of real backups.
#include <gtest/gtest.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include "coffer/util/fd.hpp"
#include "restore_support.hpp"
#include "run_coffer.hpp"
#include "source_tree.hpp"
#include "temp_dir.hpp"
#include "tree_compare.hpp"

namespace fs = std::filesystem;
using namespace coffer::test;

namespace {
std::vector<nlohmann::json> json_lines(const std::string& out, const std::string& type) {
  std::vector<nlohmann::json> v;
  std::size_t pos = 0;
  while (pos < out.size()) {
    auto nl = out.find('\n', pos);
    auto j = nlohmann::json::parse(out.substr(pos, nl - pos), nullptr, false);
    if (!j.is_discarded() && j.value("type", "") == type) v.push_back(j);
    if (nl == std::string::npos) break;
    pos = nl + 1;
  }
  return v;
}
}  // namespace

TEST(Browse, LsListsADirectoryLongRecursiveAndJson) {
  TempDir t;
  make_fidelity_tree(t / "src");
  backup(t / "src", t / "repo");
  auto r = run_coffer({"ls", (t / "repo").native(), "latest"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  int top = 0;
  for (const auto& p : list_tree(t / "src")) top += p.find('/') == std::string::npos;
  EXPECT_EQ(count_lines(r.out), top);
  EXPECT_EQ(lines_containing(r.out, "new\\x0aline"), 1) << r.out;  // names escaped, one line each
  EXPECT_EQ(lines_containing(r.out, "invalid-\\xff\\xfe-utf8"), 1) << r.out;
  EXPECT_NE(r.out.find("\ndir/\n"), std::string::npos) << r.out;  // directories end in /
  auto l = run_coffer({"ls", (t / "repo").native(), "latest:dir", "-l"});
  ASSERT_EQ(l.exit_code, 0) << l.err;
  EXPECT_EQ(lines_containing(l.out, "-rwsr-xr-x      0      0           10 "), 1) << l.out;
  EXPECT_EQ(lines_containing(l.out, "dir/rel-link -> ../plain.txt"), 1) << l.out;
  EXPECT_EQ(lines_containing(l.out, "drwxr-s---   4321   8765"), 1) << l.out;
  auto rec = run_coffer({"--json", "ls", (t / "repo").native(), "h/latest:dir", "--recursive"});
  ASSERT_EQ(rec.exit_code, 0) << rec.err;
  auto entries = json_lines(rec.out, "entry");
  int below = 0;
  for (const auto& p : list_tree(t / "src")) below += p.rfind("dir/", 0) == 0;
  EXPECT_EQ(static_cast<int>(entries.size()), below);
  bool found = false;
  for (const auto& e : entries)
    if (e["path"] == "dir/sub/hard-c") {
      found = true;
      EXPECT_EQ(e["size"], 12);
      EXPECT_EQ(e["kind"], "f");
      EXPECT_TRUE(e.contains("blake2b"));
    }
  EXPECT_TRUE(found) << rec.out;
  auto missing = run_coffer({"ls", (t / "repo").native(), "latest:no/such"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_EQ(count_lines(missing.err), 1) << missing.err;
}

TEST(Browse, FindNamesEverySnapshotHoldingAPath) {
  TempDir t;
  make_bulk_tree(t / "src", 7, 100, 1);
  write_text(t / "src/report.txt", "v1");
  std::string s1 = backup(t / "src", t / "repo");
  sleep(1);
  fs::remove(t / "src/report.txt");
  std::string s2 = backup(t / "src", t / "repo");
  sleep(1);
  write_text(t / "src/report.txt", "version 3");
  std::string s3 = backup(t / "src", t / "repo");
  backup(t / "src", t / "repo", "other");
  auto r = run_coffer({"--json", "find", (t / "repo").native(), "report.txt", "--name", "h"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto hits = json_lines(r.out, "found");
  ASSERT_EQ(hits.size(), 2u) << r.out;
  EXPECT_EQ(hits[0]["snapshot"], s1);
  EXPECT_EQ(hits[0]["size"], 2);
  EXPECT_EQ(hits[1]["snapshot"], s3);
  EXPECT_EQ(hits[1]["size"], 9);
  auto all = run_coffer({"find", (t / "repo").native(), "/d3/*"});
  ASSERT_EQ(all.exit_code, 0) << all.err;
  EXPECT_EQ(count_lines(all.out), 4) << all.out;  // d3/file3 in 3 snapshots of h and one of other
  EXPECT_EQ(lines_containing(all.out, "other/"), 1) << all.out;
}

TEST(Browse, DiffReportsAddedRemovedContentAndMetadata) {
  TempDir t;
  make_bulk_tree(t / "src", 7, 100, 1);
  write_text(t / "src/gone.txt", "x");
  write_text(t / "src/content.txt", "aaaa");
  write_text(t / "src/meta.txt", "same");
  std::string s1 = backup(t / "src", t / "repo");
  sleep(1);
  fs::remove(t / "src/gone.txt");
  write_text(t / "src/new.txt", "n");
  write_text(t / "src/content.txt", "bbbb");  // same size, other bytes
  fs::permissions(t / "src/meta.txt", fs::perms(0600));
  std::string s2 = backup(t / "src", t / "repo");
  auto r = run_coffer({"diff", (t / "repo").native(), s1, s2});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(lines_containing(r.out, "+ new.txt"), 1) << r.out;
  EXPECT_EQ(lines_containing(r.out, "- gone.txt"), 1) << r.out;
  EXPECT_EQ(lines_containing(r.out, "M content.txt  (content"), 1) << r.out;
  EXPECT_EQ(lines_containing(r.out, "m meta.txt  (mode"), 1) << r.out;
  EXPECT_EQ(lines_containing(r.out, "d0/file0"), 0) << r.out;  // unchanged files are not listed
  auto j = run_coffer({"--json", "diff", (t / "repo").native(), "h/" + s1, "h/latest"});
  ASSERT_EQ(j.exit_code, 0) << j.err;
  auto sum = json_lines(j.out, "summary");
  ASSERT_EQ(sum.size(), 1u) << j.out;
  EXPECT_EQ(sum[0]["added"], 1);
  EXPECT_EQ(sum[0]["removed"], 1);
  EXPECT_EQ(sum[0]["content"], 1);
  EXPECT_GE(sum[0]["metadata"].get<int>(), 2);  // meta.txt and the root directory's mtime
}
