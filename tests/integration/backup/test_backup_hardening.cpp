// coffer backup where the easy path is not taken: dry runs, sources that filter to nothing,
// bad arguments, trees deeper than PATH_MAX, a repository inside its own source, -q.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include "coffer/snapshot/layout.hpp"
#include "run_coffer.hpp"
#include "source_tree.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;
using namespace coffer::test;

namespace {

// The {"type": type} object of a --json run (empty if absent).
nlohmann::json json_of(const coffer::RunResult& r, const std::string& type) {
  std::size_t pos = 0;
  while (pos < r.out.size()) {
    std::size_t end = r.out.find('\n', pos);
    if (end == std::string::npos) end = r.out.size();
    auto j = nlohmann::json::parse(r.out.substr(pos, end - pos), nullptr, false);
    if (j.is_object() && j.value("type", "") == type) return j;
    pos = end + 1;
  }
  return {};
}

std::string latest_link(const fs::path& repo, const std::string& host) {
  std::error_code ec;
  return fs::read_symlink(repo / "hosts" / host / "latest", ec).native();
}

}  // namespace

TEST(BackupDryRun, ChangesNothingAndCountsWhatARealRunWouldDo) {
  TempDir t;
  write_random(t / "src/same", 5000, 1);
  write_random(t / "src/grows", 3000, 2);
  write_random(t / "src/chmod", 700, 3);
  write_text(t / "src/dir/small", "abc");
  fs::create_directories(t / "repo");
  std::string src = (t / "src").native(), repo = (t / "repo").native();

  // Nothing in the repository yet: every file is new, and the host directory is not even made.
  auto first = run_coffer({"--json", "-n", "backup", src, repo});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  auto j = json_of(first, "backup_dry_run");
  ASSERT_FALSE(j.empty()) << first.out;
  EXPECT_EQ(j["new_files"], 4);
  EXPECT_EQ(j["new_bytes"], 5000 + 3000 + 700 + 3);
  EXPECT_EQ(j["unchanged_files"], 0);
  EXPECT_EQ(j["entries"], 6);  // the root, dir and four files
  EXPECT_TRUE(json_of(first, "backup").empty()) << "a dry run reports no snapshot";
  EXPECT_FALSE(fs::exists(t / "repo/hosts")) << "a dry run creates nothing";

  ASSERT_EQ(run_coffer({"backup", src, repo}).exit_code, 0);
  auto before = coffer::snapshot::list_complete(t / "repo", "src");
  ASSERT_EQ(before.size(), 1u);
  std::string latest = latest_link(t / "repo", "src");

  write_random(t / "src/grows", 4000, 2);
  ::chmod((t / "src/chmod").c_str(), 0600);
  write_random(t / "src/dir/new", 1234, 4);
  auto human = run_coffer({"backup", "--dry-run", src, repo});
  ASSERT_EQ(human.exit_code, 0) << human.err;
  EXPECT_NE(human.out.find("dry run"), std::string::npos) << human.out;
  EXPECT_NE(human.out.find("new files:       1 (1.2 KiB)"), std::string::npos) << human.out;
  EXPECT_NE(human.out.find("unchanged files: 2"), std::string::npos) << human.out;
  auto r = run_coffer({"--json", "backup", "-n", src, repo});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  j = json_of(r, "backup_dry_run");
  EXPECT_EQ(j["new_files"], 1);
  EXPECT_EQ(j["new_bytes"], 1234);
  EXPECT_EQ(j["changed_files"], 1);
  EXPECT_EQ(j["changed_bytes"], 4000);
  EXPECT_EQ(j["metadata_files"], 1);
  EXPECT_EQ(j["metadata_bytes"], 700);
  EXPECT_EQ(j["unchanged_files"], 2);
  EXPECT_EQ(j["unchanged_bytes"], 5000 + 3);

  // Still exactly the one snapshot, `latest` where it was, no in-progress directory.
  auto after = coffer::snapshot::list_complete(t / "repo", "src");
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0].name, before[0].name);
  EXPECT_EQ(latest_link(t / "repo", "src"), latest);
  EXPECT_FALSE(fs::exists(t / "repo/hosts/src/.in-progress"));
}

TEST(BackupDryRun, MissingRepositoryAndEmptySourceAreStillErrors) {
  TempDir t;
  write_text(t / "src/f", "x");
  fs::create_directories(t / "empty");
  EXPECT_EQ(run_coffer({"-n", "backup", (t / "src").native(), (t / "nope").native()}).exit_code,
            10);
  fs::create_directories(t / "repo");
  EXPECT_EQ(run_coffer({"-n", "backup", (t / "empty").native(), (t / "repo").native()}).exit_code,
            1);
  EXPECT_FALSE(fs::exists(t / "repo/hosts"));
}

TEST(BackupExclude, AnExcludeThatMatchesEverythingIsRefusedLikeAnEmptySource) {
  TempDir t;
  write_text(t / "src/a", "x");
  write_text(t / "src/dir/b", "y");
  fs::create_directories(t / "repo");
  for (const char* pattern : {"*", "/*"}) {
    SCOPED_TRACE(pattern);
    auto r = run_coffer({"backup", (t / "src").native(), (t / "repo").native(), "--exclude", pattern});
    EXPECT_EQ(r.exit_code, 1) << r.out;
    EXPECT_NE(r.err.find("excluded"), std::string::npos) << r.err;
    EXPECT_EQ(count_lines(r.err), 1) << r.err;
    EXPECT_TRUE(coffer::snapshot::list_complete(t / "repo", "src").empty());
    EXPECT_FALSE(fs::exists(t / "repo/hosts/src/.in-progress"));
  }
  // What is left after the filter decides: one file kept is a snapshot.
  auto kept = run_coffer({"backup", (t / "src").native(), (t / "repo").native(), "--include", "a",
                          "--exclude", "*"});
  ASSERT_EQ(kept.exit_code, 0) << kept.err;
  EXPECT_EQ(coffer::snapshot::list_complete(t / "repo", "src").size(), 1u);
}

TEST(BackupErrors, AreOneLineAndEmptyArgumentsAreUsageErrors) {
  TempDir t;
  write_text(t / "src/f", "x");
  fs::create_directories(t / "empty");
  fs::create_directories(t / "repo");
  std::string src = (t / "src").native(), repo = (t / "repo").native();
  struct Case {
    std::vector<std::string> args;
    int code;
    const char* says;
  };
  for (const Case& c : std::vector<Case>{
           {{"backup", "", repo}, 2, "SOURCE"},
           {{"backup", src, ""}, 2, "REPO"},
           {{"backup", (t / "empty").native(), repo}, 1, "empty"},
           {{"backup", (t / "missing").native(), repo}, 1, "No such file"},
           {{"backup", src, (t / "nope").native()}, 10, "nope"},
       }) {
    SCOPED_TRACE(c.args[1] + " -> " + c.args[2]);
    auto r = run_coffer(c.args);
    EXPECT_EQ(r.exit_code, c.code) << r.err;
    EXPECT_EQ(count_lines(r.err), 1) << r.err;
    EXPECT_NE(r.err.find(c.says), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("filesystem error"), std::string::npos) << r.err;
  }
  EXPECT_FALSE(fs::exists(t / "repo/hosts"));
}
