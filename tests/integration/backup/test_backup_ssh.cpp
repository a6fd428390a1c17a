// Pull (B starts the agent on A) and push (A starts the agent on B) over a real sshd on a
// loopback port; a forced-command agent; a connection killed in the middle of a run.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <chrono>
#include <thread>

#include "coffer/snapshot/layout.hpp"
#include "run_coffer.hpp"
#include "source_tree.hpp"
#include "sshd.hpp"
#include "temp_dir.hpp"
#include "tree_compare.hpp"

namespace fs = std::filesystem;
using namespace coffer::test;

static auto* const sshd_env = ::testing::AddGlobalTestEnvironment(new SshdEnvironment);

namespace {

coffer::RunResult coffer_ssh(std::vector<std::string> args) {
  args.insert(args.end(), {"--remote-command", coffer_bin()});
  return run_coffer(args, {}, SshdEnvironment::sshd().env());
}

std::string remote(const std::string& alias, const fs::path& p) {
  return alias + ":" + p.native();
}

ino_t inode(const fs::path& p) {
  struct stat st {};
  ::lstat(p.c_str(), &st);
  return st.st_ino;
}

}  // namespace

TEST(BackupSsh, PullIsExactAndASecondPullLinksEverything) {
  auto& sshd = SshdEnvironment::sshd();
  TempDir t;
  make_fidelity_tree(t / "src");
  fs::create_directories(t / "repo");
  auto r = coffer_ssh({"--json", "backup", remote(sshd.alias(), t / "src"), (t / "repo").native()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(backup_json(r)["host"], sshd.alias());  // default name: the host as written
  auto diffs = compare_trees(t / "src", latest_tree(t / "repo", sshd.alias()));
  EXPECT_TRUE(diffs.empty()) << join_lines(diffs);

  // No sleep: a second snapshot within the same second takes the next second's name.
  auto again =
      coffer_ssh({"--json", "backup", remote(sshd.alias(), t / "src"), (t / "repo").native()});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  ASSERT_EQ(coffer::snapshot::list_complete(t / "repo", sshd.alias()).size(), 2u);
  fs::path prev = previous_tree(t / "repo", sshd.alias()),
           cur = latest_tree(t / "repo", sshd.alias());
  ASSERT_NE(prev, cur);
  for (const auto& p : regular_files(t / "src")) EXPECT_EQ(inode(prev / p), inode(cur / p)) << p;
  EXPECT_EQ(backup_json(again)["data_files"], 0);
}

TEST(BackupSsh, PushIsExact) {
  auto& sshd = SshdEnvironment::sshd();
  TempDir t;
  make_fidelity_tree(t / "src");
  make_bulk_tree(t / "src/bulk", 20, 300000, 3);  // enough data to fill the SSH window
  fs::create_directories(t / "repo");
  auto r = coffer_ssh({"--json", "backup", (t / "src").native(), remote(sshd.alias(), t / "repo"),
                       "--name", "pushed"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = backup_json(r);
  EXPECT_GT(j["bytes_to_receiver"].template get<std::uint64_t>(), 6000000u);
  auto diffs = compare_trees(t / "src", latest_tree(t / "repo", "pushed"));
  EXPECT_TRUE(diffs.empty()) << join_lines(diffs);
}

TEST(BackupSsh, ForcedCommandAgentSendsOnlyWhatItAllows) {
  auto& sshd = SshdEnvironment::sshd();
  TempDir t;
  write_text(t / "allowed/src/f", "x");
  write_text(t / "other/f", "x");
  fs::create_directories(t / "repo");
  std::string alias = sshd.add_forced_command(coffer_bin() + " agent --send-only --allow " +
                                              (t / "allowed").native());
  auto ok = coffer_ssh(
      {"backup", remote(alias, t / "allowed/src"), (t / "repo").native(), "--name", "f"});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_EQ(list_tree(latest_tree(t / "repo", "f")), std::vector<std::string>{"f"});
  auto outside =
      coffer_ssh({"backup", remote(alias, t / "other"), (t / "repo").native(), "--name", "o"});
  EXPECT_EQ(outside.exit_code, 1);
  EXPECT_NE(outside.err.find("--allow"), std::string::npos) << outside.err;
  auto push =
      coffer_ssh({"backup", (t / "other").native(), remote(alias, t / "repo"), "--name", "p"});
  EXPECT_EQ(push.exit_code, 1);
  EXPECT_NE(push.err.find("only sends"), std::string::npos) << push.err;
  EXPECT_TRUE(coffer::snapshot::list_complete(t / "repo", "o").empty());
  EXPECT_TRUE(coffer::snapshot::list_complete(t / "repo", "p").empty());
}

TEST(BackupSsh, LostConnectionIsResumedWithoutResendingFinishedFiles) {
  auto& sshd = SshdEnvironment::sshd();
  TempDir t;
  const int files = 200;
  const std::size_t size = 256 * 1024;
  std::uint64_t total = make_bulk_tree(t / "src", files, size, 5);
  fs::create_directories(t / "repo");
  std::vector<std::string> argv{"/usr/bin/env"};
  for (const auto& e : sshd.env()) argv.push_back(e);
  argv.insert(argv.end(),
              {coffer_bin(), "backup", remote(sshd.alias(), t / "src"), (t / "repo").native(),
               "--name", "lost", "--remote-command", coffer_bin()});
  coffer::SpawnOptions so;
  so.null_stdin = true;
  so.pipe_stdout = true;
  so.pipe_stderr = true;
  coffer::Process p(argv, so);
  fs::path partial = t / "repo/hosts/lost/.in-progress/tree";
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (count_regular(partial) < files / 4 && std::chrono::steady_clock::now() < deadline &&
         ::kill(p.pid(), 0) == 0)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ASSERT_GT(sshd.kill_connections(), 0);
  EXPECT_EQ(p.wait(), 1);
  EXPECT_TRUE(coffer::snapshot::list_complete(t / "repo", "lost").empty());
  int finished = count_regular(partial);
  ASSERT_GE(finished, files / 4);
  ASSERT_LT(finished, files);
  auto r = coffer_ssh({"--json", "backup", remote(sshd.alias(), t / "src"), (t / "repo").native(),
                       "--name", "lost"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = backup_json(r);
  EXPECT_GE(j["resumed"].get<int>(), finished);
  EXPECT_LT(j["bytes_to_receiver"].get<std::uint64_t>(),
            total - static_cast<std::uint64_t>(finished) * size + 65536);
  auto diffs = compare_trees(t / "src", latest_tree(t / "repo", "lost"));
  EXPECT_TRUE(diffs.empty()) << join_lines(diffs);
}

TEST(BackupSsh, DryRunPullAndPushWriteNothing) {
  auto& sshd = SshdEnvironment::sshd();
  TempDir t;
  write_random(t / "src/a", 4096, 1);
  write_random(t / "src/b", 100, 2);
  fs::create_directories(t / "repo");
  ASSERT_EQ(
      coffer_ssh({"backup", (t / "src").native(), (t / "repo").native(), "--name", "h"}).exit_code,
      0);
  auto before = coffer::snapshot::list_complete(t / "repo", "h");
  ASSERT_EQ(before.size(), 1u);
  write_random(t / "src/c", 777, 3);
  for (bool push : {false, true}) {
    SCOPED_TRACE(push ? "push" : "pull");
    std::string src = push ? (t / "src").native() : remote(sshd.alias(), t / "src");
    std::string repo = push ? remote(sshd.alias(), t / "repo") : (t / "repo").native();
    auto r = coffer_ssh({"--json", "-n", "backup", src, repo, "--name", "h"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("\"type\":\"backup_dry_run\""), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("\"new_files\":1,"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("\"new_bytes\":777,"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("\"unchanged_files\":2,"), std::string::npos) << r.out;
    auto after = coffer::snapshot::list_complete(t / "repo", "h");
    ASSERT_EQ(after.size(), 1u);
    EXPECT_EQ(after[0].name, before[0].name);
    EXPECT_FALSE(fs::exists(t / "repo/hosts/h/.in-progress"));
  }
}

TEST(BackupSsh, ErrorsOnEitherSideAreOneLine) {
  auto& sshd = SshdEnvironment::sshd();
  TempDir t;
  fs::create_directories(t / "empty");
  write_text(t / "src/f", "x");
  fs::create_directories(t / "repo");
  // Pull: the agent on A fails (empty source); push: the agent on B fails (no REPO).
  auto pull = coffer_ssh({"backup", remote(sshd.alias(), t / "empty"), (t / "repo").native()});
  EXPECT_EQ(pull.exit_code, 1);
  EXPECT_NE(pull.err.find("empty"), std::string::npos) << pull.err;
  EXPECT_EQ(count_lines(pull.err), 1) << pull.err;
  auto push =
      coffer_ssh({"backup", (t / "src").native(), remote(sshd.alias(), t / "nope"), "--name", "p"});
  EXPECT_NE(push.exit_code, 0);
  EXPECT_NE(push.err.find("nope"), std::string::npos) << push.err;
  EXPECT_EQ(count_lines(push.err), 1) << push.err;
  // An agent that cannot even start: what it said is part of the one error line.
  auto bad = run_coffer({"backup", remote(sshd.alias(), t / "src"), (t / "repo").native(),
                         "--remote-command", "/nonexistent/coffer"},
                        {}, sshd.env());
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_EQ(count_lines(bad.err), 1) << bad.err;
}
