// coffer forget: which snapshots go, that the rest stay exactly as they were, and that an
// interrupted forget leaves each snapshot whole or gone.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <chrono>
#include <csignal>
#include <set>
#include <thread>

#include "coffer/snapshot/layout.hpp"
#include "forget_fixture.hpp"
#include "run_coffer.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;
using namespace coffer::test;

namespace {

std::set<std::string> names_with(const std::vector<nlohmann::json>& lines,
                                 const std::string& action) {
  std::set<std::string> out;
  for (const auto& j : lines)
    if (j["action"] == action) out.insert(j["snapshot"].get<std::string>());
  return out;
}

}  // namespace

TEST(Forget, KeepsWhatThePolicySaysAndLeavesTheRestUnchanged) {
  TempDir t;
  fs::create_directories(t / "src");
  write_text(t / "src/shared", "in every snapshot\n");
  fs::create_directories(t / "repo");
  std::vector<std::string> snaps;
  for (int d = 1; d <= 6; ++d)
    snaps.push_back(make_snapshot(t / "src", t / "repo", "h", utc_time(2026, 3, d), 20));
  std::map<std::string, std::map<std::string, std::string>> before;
  for (const auto& s : snaps) before[s] = fingerprint(t / "repo/hosts/h" / s);

  // Dry run: the same decisions, nothing removed.
  auto dry = run_coffer({"--json", "--dry-run", "forget", (t / "repo").native(), "--keep-last", "2",
                         "--keep-daily", "3"});
  ASSERT_EQ(dry.exit_code, 0) << dry.err;
  EXPECT_EQ(names_with(json_lines(dry, "forget"), "remove"),
            (std::set<std::string>{snaps[0], snaps[1], snaps[2]}));
  EXPECT_EQ(snapshot_dirs(t / "repo", "h").size(), 6u);

  auto r = run_coffer({"--json", "forget", (t / "repo").native(), "--name", "h", "--keep-last", "2",
                       "--keep-daily", "3"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto lines = json_lines(r, "forget");
  ASSERT_EQ(lines.size(), 6u);
  EXPECT_EQ(names_with(lines, "keep"), (std::set<std::string>{snaps[3], snaps[4], snaps[5]}));
  EXPECT_EQ(names_with(lines, "remove"), (std::set<std::string>{snaps[0], snaps[1], snaps[2]}));
  for (const auto& j : lines)
    if (j["snapshot"] == snaps[5]) {
      EXPECT_EQ(j["reasons"], nlohmann::json({"last", "daily"}));
    }
  EXPECT_EQ(snapshot_dirs(t / "repo", "h"),
            (std::vector<std::string>{snaps[3], snaps[4], snaps[5]}));
  EXPECT_FALSE(fs::exists(t / "repo/hosts/h/.removing"));
  for (int i = 3; i < 6; ++i) {
    EXPECT_EQ(fingerprint(t / "repo/hosts/h" / snaps[i]), before[snaps[i]]) << snaps[i];
    auto diffs = tree_vs_catalog(t / "repo/hosts/h" / snaps[i]);
    EXPECT_TRUE(diffs.empty()) << snaps[i] << ": " << (diffs.empty() ? "" : diffs[0]);
  }
  // The shared file lost three names and nothing else.
  struct stat st {};
  ASSERT_EQ(::lstat((t / "repo/hosts/h" / snaps[5] / "tree/shared").c_str(), &st), 0);
  EXPECT_EQ(st.st_nlink, 3u);

  // The same policy again removes nothing; human output names every snapshot and its rules.
  auto again =
      run_coffer({"forget", (t / "repo").native(), "--keep-last", "2", "--keep-daily", "3"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(again.out.find("remove "), std::string::npos) << again.out;
  EXPECT_NE(again.out.find("keep   hosts/h/" + snaps[5] + "  (last, daily)"), std::string::npos)
      << again.out;
  EXPECT_EQ(snapshot_dirs(t / "repo", "h").size(), 3u);
}

TEST(Forget, UsesTheConfigRetentionAndRefusesAnEmptyPolicy) {
  TempDir t;
  fs::create_directories(t / "src");
  fs::create_directories(t / "repo");
  std::vector<std::string> snaps;
  for (int m = 1; m <= 4; ++m)
    snaps.push_back(
        make_snapshot(t / "src", t / "repo", "h", coffer::test::utc_time(2026, m, 15), 3));
  write_text(t / "c.toml",
             "[retention]\nlast = 0\ndaily = 0\nweekly = 0\nmonthly = 0\nyearly = 0\n");
  auto empty = run_coffer({"-c", (t / "c.toml").native(), "forget", (t / "repo").native()});
  EXPECT_EQ(empty.exit_code, 2) << empty.err;
  EXPECT_NE(empty.err.find("keeps nothing"), std::string::npos) << empty.err;
  auto zero = run_coffer({"forget", (t / "repo").native(), "--keep-last", "0"});
  EXPECT_EQ(zero.exit_code, 2) << zero.err;
  EXPECT_EQ(snapshot_dirs(t / "repo", "h").size(), 4u);

  write_text(t / "c.toml",
             "[retention]\nlast = 1\ndaily = 0\nweekly = 0\nmonthly = 0\nyearly = 0\n"
             "within = \"40d\"\n");
  auto r = run_coffer({"-c", (t / "c.toml").native(), "forget", (t / "repo").native()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // 40 days back from 15 April: 15 March is inside, 15 February is not.
  EXPECT_EQ(snapshot_dirs(t / "repo", "h"), (std::vector<std::string>{snaps[2], snaps[3]}));
  EXPECT_NE(r.out.find("(within)"), std::string::npos) << r.out;
}

TEST(Forget, InterruptedForgetLeavesEachSnapshotWholeOrGoneAndTheNextRunFinishes) {
  TempDir t;
  fs::create_directories(t / "src");
  fs::create_directories(t / "repo");
  std::vector<std::string> snaps;
  for (int d = 1; d <= 7; ++d)
    snaps.push_back(make_snapshot(t / "src", t / "repo", "h", utc_time(2026, 5, d), 2500));
  std::map<std::string, std::map<std::string, std::string>> before;
  for (const auto& s : snaps) before[s] = fingerprint(t / "repo/hosts/h" / s);

  bool landed = false;
  for (int attempt = 0; attempt < 4 && !landed; ++attempt) {
    coffer::SpawnOptions quiet;
    quiet.null_stdin = true;
    quiet.pipe_stdout = true;
    quiet.pipe_stderr = true;
    coffer::Process p({coffer_bin(), "forget", (t / "repo").native(), "--keep-last", "1"}, quiet);
    // Kill once the first snapshot has left hosts/h/ (a little later on each attempt).
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    auto moved_one = [&] {
      std::error_code ec;
      return fs::exists(t / "repo/hosts/h/.removing", ec) &&
             !fs::is_empty(t / "repo/hosts/h/.removing", ec);
    };
    while (!moved_one() && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
    std::this_thread::sleep_for(std::chrono::milliseconds(attempt * 3));
    p.kill(SIGKILL);
    p.wait();
    landed =
        fs::exists(t / "repo/hosts/h/.removing") && !fs::is_empty(t / "repo/hosts/h/.removing");
    // Whatever is still listed is whole: identical to before, catalog and tree.
    for (const auto& s : snapshot_dirs(t / "repo", "h"))
      EXPECT_EQ(fingerprint(t / "repo/hosts/h" / s), before[s])
          << s << " after attempt " << attempt;
    auto list = run_coffer({"--json", "snapshots", (t / "repo").native()});
    ASSERT_EQ(list.exit_code, 0) << list.err;
    EXPECT_EQ(static_cast<std::size_t>(count_lines(list.out)),
              snapshot_dirs(t / "repo", "h").size());
    if (!landed) break;  // forget got to the end before the kill: nothing left to resume
    // The next run finishes what was left and removes nothing kept.
    auto next = run_coffer({"forget", (t / "repo").native(), "--keep-last", "1"});
    ASSERT_EQ(next.exit_code, 0) << next.err;
    EXPECT_NE(next.out.find("interrupted removal(s) finished"), std::string::npos) << next.out;
    EXPECT_FALSE(fs::exists(t / "repo/hosts/h/.removing"));
    EXPECT_EQ(snapshot_dirs(t / "repo", "h"), (std::vector<std::string>{snaps.back()}));
  }
  EXPECT_TRUE(landed) << "no kill landed while snapshots were being removed";
  EXPECT_EQ(fingerprint(t / "repo/hosts/h" / snaps.back()), before[snaps.back()]);
}

TEST(Forget, RunDryRunShowsTheRetentionOfEachSource) {
  TempDir t;
  write_text(t / "c.toml", "runtime_dir = \"" + (t / "run").native() + "\"\n[vault]\nimage = \"" +
                               (t / "vault.img").native() +
                               "\"\n[[source]]\nname = \"web1\"\npath = \"/srv\"\n"
                               "[retention]\nlast = 2\ndaily = 5\nweekly = 0\nmonthly = 0\n"
                               "yearly = 0\nwithin = \"10d\"\n");
  // The vault is named by the file itself (docs/vault.md), so even a dry run needs it to exist;
  // a dry run reads nothing from it.
  write_text(t / "vault.img", "");
  auto r = run_coffer({"-c", (t / "c.toml").native(), "run", "--dry-run"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("would apply [retention] to hosts/web1: keep last 2, daily 5, within 10d"),
            std::string::npos)
      << r.out;
  EXPECT_EQ(fs::file_size(t / "vault.img"), 0u);
}

TEST(Snapshots, ShowWhatEachSnapshotAdds) {
  TempDir t;
  fs::create_directories(t / "src");
  fs::create_directories(t / "repo");
  write_text(t / "src/big", std::string(1 << 20, 'b'));
  make_snapshot(t / "src", t / "repo", "h", utc_time(2026, 7, 1), 2);
  make_snapshot(t / "src", t / "repo", "h", utc_time(2026, 7, 2), 2);  // big is shared
  write_text(t / "src/big2", std::string(2 << 20, 'c'));
  make_snapshot(t / "src", t / "repo", "h", utc_time(2026, 7, 3), 2);
  auto r = run_coffer({"--json", "snapshots", (t / "repo").native()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto lines = json_lines(r, "snapshot");
  ASSERT_EQ(lines.size(), 3u);
  auto added = [&](int i) {
    return lines[static_cast<std::size_t>(i)]["added_bytes"].get<std::uint64_t>();
  };
  EXPECT_GE(added(0), 1u << 20);
  EXPECT_LT(added(1), 1u << 19) << "the shared 1 MiB file is not added again";
  EXPECT_GE(added(2), 2u << 20);
  EXPECT_LT(added(2), 3u << 20);
}
