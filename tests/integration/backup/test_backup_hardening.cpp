// coffer backup where the easy path is not taken: dry runs, sources that filter to nothing,
// bad arguments, trees deeper than PATH_MAX, a repository inside its own source, -q.
#include <fcntl.h>
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

// 21 nested directories of 200-byte names: deeper than PATH_MAX (4096), so made (and read)
// relative to directory fds. Returns the path of the directory holding `deep.txt`, relative.
std::string make_deep_tree(const fs::path& root, std::string_view content) {
  fs::create_directories(root);
  int dir = ::open(root.c_str(), O_RDONLY | O_DIRECTORY);
  std::string rel;
  for (int i = 0; i < 21; ++i) {
    std::string name = std::string(200, static_cast<char>('a' + i));
    EXPECT_EQ(::mkdirat(dir, name.c_str(), 0755), 0);
    int sub = ::openat(dir, name.c_str(), O_RDONLY | O_DIRECTORY);
    ::close(dir);
    dir = sub;
    rel += (rel.empty() ? "" : "/") + name;
  }
  int f = ::openat(dir, "deep.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
  EXPECT_EQ(::write(f, content.data(), content.size()), static_cast<ssize_t>(content.size()));
  ::close(f);
  ::close(dir);
  EXPECT_GT(rel.size(), std::size_t{PATH_MAX});
  return rel;
}

// Reads `root/rel/deep.txt` one component at a time ("" if any step fails).
std::string read_deep(const fs::path& root, const std::string& rel) {
  int dir = ::open(root.c_str(), O_RDONLY | O_DIRECTORY);
  for (std::size_t start = 0; dir >= 0 && start < rel.size();) {
    std::size_t end = rel.find('/', start);
    if (end == std::string::npos) end = rel.size();
    int sub =
        ::openat(dir, rel.substr(start, end - start).c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    ::close(dir);
    dir = sub;
    start = end + 1;
  }
  if (dir < 0) return {};
  int f = ::openat(dir, "deep.txt", O_RDONLY);
  ::close(dir);
  if (f < 0) return {};
  std::string out(65536, '\0');
  ssize_t n = ::read(f, out.data(), out.size());
  ::close(f);
  out.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
  return out;
}

// fs::remove_all cannot name paths past PATH_MAX; GNU rm walks with fds.
void remove_deep(const fs::path& p) {
  coffer::run_process({"/bin/rm", "-rf", p.native()});
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
    auto r =
        run_coffer({"backup", (t / "src").native(), (t / "repo").native(), "--exclude", pattern});
    EXPECT_EQ(r.exit_code, 1) << r.out;
    EXPECT_NE(r.err.find("excluded"), std::string::npos) << r.err;
    EXPECT_EQ(count_lines(r.err), 1) << r.err;
    EXPECT_TRUE(coffer::snapshot::list_complete(t / "repo", "src").empty());
    EXPECT_FALSE(fs::exists(t / "repo/hosts/src/.in-progress"));
  }
  // What is left after the filter decides: one file kept is a snapshot.
  auto kept = run_coffer(
      {"backup", (t / "src").native(), (t / "repo").native(), "--include", "a", "--exclude", "*"});
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

TEST(BackupDeep, ATreeDeeperThanPathMaxIsBackedUpResumedAndLinked) {
  TempDir t;
  struct Cleanup {
    fs::path p;
    ~Cleanup() { remove_deep(p); }
  } cleanup{t.path()};
  std::string content(3000, 'x');
  content += "the deep end\n";
  std::string rel = make_deep_tree(t / "src", content);
  write_text(t / "src/top", "top");
  fs::create_directories(t / "repo");
  std::string src = (t / "src").native(), repo = (t / "repo").native();
  auto r = run_coffer({"--json", "backup", src, repo, "--name", "d"});
  ASSERT_EQ(r.exit_code, 0) << r.err.substr(0, 300);
  EXPECT_EQ(read_deep(latest_tree(t / "repo", "d"), rel), content);

  // A run that stopped half-way leaves its tree in .in-progress (as every run did before deep
  // paths worked); the next run resumes from it and removes it, deep parts included.
  auto snaps = coffer::snapshot::list_complete(t / "repo", "d");
  ASSERT_EQ(snaps.size(), 1u);
  fs::path in_progress = t / "repo/hosts/d/.in-progress";
  fs::rename(snaps[0].dir, in_progress);
  fs::remove(in_progress / "complete");
  fs::remove(in_progress / "catalog");
  fs::remove(t / "repo/hosts/d/latest");
  auto resumed = run_coffer({"--json", "backup", src, repo, "--name", "d"});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err.substr(0, 300);
  EXPECT_GE(backup_json(resumed)["resumed"].get<int>(), 2);
  EXPECT_FALSE(fs::exists(in_progress));
  EXPECT_EQ(read_deep(latest_tree(t / "repo", "d"), rel), content);

  // Unchanged: linked; changed: a delta against the deep previous version.
  content[10] = 'y';
  remove_deep(t / "src");
  rel = make_deep_tree(t / "src", content);
  write_text(t / "src/top", "top");
  auto changed = run_coffer({"--json", "backup", src, repo, "--name", "d"});
  ASSERT_EQ(changed.exit_code, 0) << changed.err.substr(0, 300);
  EXPECT_EQ(backup_json(changed)["delta_files"], 1);
  EXPECT_EQ(read_deep(latest_tree(t / "repo", "d"), rel), content);
}

TEST(BackupRepoInSource, TheRepositoryIsLeftOutAndSnapshotsDoNotGrow) {
  TempDir t;
  write_text(t / "src/a", "a");
  write_text(t / "src/data/b", "b");
  // Glob characters in the repository's name must not widen or break the exclusion.
  for (const char* name : {"vault", "da[t]a*?/in side"}) {
    SCOPED_TRACE(name);
    fs::path repo = t / "src" / name;
    fs::create_directories(repo);
    std::vector<std::uint64_t> entries;
    for (int i = 0; i < 3; ++i) {
      auto r = run_coffer({"--json", "backup", (t / "src").native(), repo.native(), "--name", "h"});
      ASSERT_EQ(r.exit_code, 0) << r.err;
      EXPECT_NE(r.err.find("inside SOURCE"), std::string::npos) << r.err;
      entries.push_back(backup_json(r)["entries"].get<std::uint64_t>());
    }
    EXPECT_EQ(entries[0], entries[2]) << "the repository was backed up into itself";
    fs::path tree = latest_tree(repo, "h");
    EXPECT_TRUE(fs::exists(tree / "a"));
    EXPECT_TRUE(fs::exists(tree / "data/b")) << "only the repository itself is left out";
    EXPECT_FALSE(fs::exists(tree / name));
    fs::remove_all(repo);
  }
  auto same = run_coffer({"backup", (t / "src").native(), (t / "src/.").native()});
  EXPECT_EQ(same.exit_code, 2) << same.err;
  EXPECT_EQ(count_lines(same.err), 1) << same.err;
}

TEST(BackupQuiet, QuietPrintsNothingOnSuccessAndProgressIsNoOption) {
  TempDir t;
  write_text(t / "src/f", "x");
  fs::create_directories(t / "repo");
  for (int i = 0; i < 2; ++i) {
    for (const char* q : {"-q", "--quiet"}) {
      auto r = run_coffer({q, "backup", (t / "src").native(), (t / "repo").native()});
      ASSERT_EQ(r.exit_code, 0) << r.err;
      EXPECT_EQ(r.out, "");
      EXPECT_EQ(r.err, "");
    }
  }
  auto dry = run_coffer({"-q", "-n", "backup", (t / "src").native(), (t / "repo").native()});
  EXPECT_EQ(dry.exit_code, 0);
  EXPECT_EQ(dry.out + dry.err, "");
  // Warnings still show with -q: only summaries go.
  write_text(t / "src/locked/x", "x");
  ::chmod((t / "src/locked").c_str(), 0);
  auto warned = run_coffer({"-q", "backup", (t / "src").native(), (t / "repo").native()});
  ::chmod((t / "src/locked").c_str(), 0700);
  if (::geteuid() != 0) {
    EXPECT_EQ(warned.exit_code, 3);
    EXPECT_NE(warned.err, "");
  }
  EXPECT_EQ(warned.out, "");
  // --progress drew nothing; it is not offered until there is a display behind it.
  EXPECT_EQ(
      run_coffer({"--progress", "backup", (t / "src").native(), (t / "repo").native()}).exit_code,
      2);
  EXPECT_EQ(run_coffer({"--help"}).out.find("progress"), std::string::npos);
}
