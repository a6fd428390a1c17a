// What a backup does when the source moves under it or the agent dies: warnings and exit 3,
// an in-progress snapshot that the next run resumes without sending finished files again.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <chrono>
#include <csignal>
#include <fstream>
#include <thread>

#include "coffer/snapshot/layout.hpp"
#include "run_coffer.hpp"
#include "source_tree.hpp"
#include "temp_dir.hpp"
#include "tree_compare.hpp"

namespace fs = std::filesystem;
using namespace coffer::test;
using coffer::Process;
using coffer::SpawnOptions;

namespace {

SpawnOptions quiet_pipes() {
  SpawnOptions o;
  o.pipe_stdout = true;
  o.pipe_stderr = true;
  o.null_stdin = true;
  return o;
}

std::string drain(coffer::UniqueFd& fd) {
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd.get(), buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
  return out;
}

// Polls `ready` every millisecond for up to a minute while `p` runs.
template <typename F>
bool wait_until(Process& p, F ready) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    if (ready()) return true;
    if (::kill(p.pid(), 0) != 0) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return false;
}

pid_t first_child(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children");
  pid_t child = 0;
  in >> child;
  return child;
}

}  // namespace

TEST(BackupFaults, FileVanishingBeforeItIsReadIsAWarningAndExit3) {
  TempDir t;
  write_random(t / "src/aaa-big", 64 << 20, 1);
  write_text(t / "src/zzz-small", "requested last, deleted before it is read");
  fs::create_directories(t / "repo");
  Process p({coffer_bin(), "backup", (t / "src").native(), (t / "repo").native()}, quiet_pipes());
  // The first answer is being written once the list is complete: then the small file goes away.
  fs::path staging = t / "repo/hosts/src/.in-progress/staging";
  bool deleted = wait_until(p, [&] {
    std::error_code ec;
    if (fs::is_empty(staging, ec) || ec) return false;
    fs::remove(t / "src/zzz-small");
    return true;
  });
  std::string err = drain(p.stderr_fd());
  int rc = p.wait();
  ASSERT_TRUE(deleted) << "the backup ended before the test could delete the file: " << err;
  EXPECT_EQ(rc, 3) << err;
  EXPECT_NE(err.find("zzz-small"), std::string::npos) << err;
  EXPECT_NE(err.find("vanished"), std::string::npos) << err;
  fs::path tree = latest_tree(t / "repo", "src");
  ASSERT_FALSE(tree.empty()) << "a run with warnings still completes its snapshot";
  EXPECT_EQ(list_tree(tree), std::vector<std::string>{"aaa-big"});
  auto snaps = coffer::snapshot::list_complete(t / "repo", "src");
  EXPECT_EQ(snaps.back().marker.warnings, 1u);
}

TEST(BackupFaults, FileChangingAfterItWasListedIsAWarningAndExit3) {
  TempDir t;
  write_random(t / "src/aaa-big", 64 << 20, 2);
  write_text(t / "src/zzz-small", "requested last, grows before it is read");
  fs::create_directories(t / "repo");
  Process p({coffer_bin(), "backup", (t / "src").native(), (t / "repo").native()}, quiet_pipes());
  fs::path staging = t / "repo/hosts/src/.in-progress/staging";
  bool changed = wait_until(p, [&] {
    std::error_code ec;
    if (fs::is_empty(staging, ec) || ec) return false;
    write_text(t / "src/zzz-small", "requested last, grows before it is read, and grew");
    return true;
  });
  std::string err = drain(p.stderr_fd());
  int rc = p.wait();
  ASSERT_TRUE(changed) << "the backup ended before the test could change the file: " << err;
  EXPECT_EQ(rc, 3) << err;
  EXPECT_NE(err.find("zzz-small"), std::string::npos) << err;
  EXPECT_NE(err.find("changed while it was read"), std::string::npos) << err;
  auto snaps = coffer::snapshot::list_complete(t / "repo", "src");
  ASSERT_FALSE(snaps.empty()) << "a run with warnings still completes its snapshot";
  EXPECT_EQ(snaps.back().marker.warnings, 1u);
}

TEST(BackupFaults, KilledAgentLeavesNoSnapshotAndTheNextRunResumes) {
  TempDir t;
  const int files = 240;
  const std::size_t size = 256 * 1024;
  std::uint64_t total = make_bulk_tree(t / "src", files, size, 11);
  fs::create_directories(t / "repo");
  Process p({coffer_bin(), "backup", (t / "src").native(), (t / "repo").native(), "--name", "k"},
            quiet_pipes());
  fs::path partial = t / "repo/hosts/k/.in-progress/tree";
  bool reached = wait_until(p, [&] { return count_regular(partial) >= files / 4; });
  pid_t agent = first_child(p.pid());
  ASSERT_TRUE(reached && agent > 0) << "backup ended before it could be interrupted";
  ::kill(agent, SIGKILL);
  std::string err = drain(p.stderr_fd());
  EXPECT_EQ(p.wait(), 1) << err;
  EXPECT_TRUE(coffer::snapshot::list_complete(t / "repo", "k").empty());
  auto list = run_coffer({"snapshots", (t / "repo").native()});
  EXPECT_NE(list.out.find("no complete snapshots"), std::string::npos) << list.out;
  int finished = count_regular(partial);
  ASSERT_GE(finished, files / 4);
  ASSERT_LT(finished, files) << "the agent was killed too late to test a resume";

  auto r =
      run_coffer({"--json", "backup", (t / "src").native(), (t / "repo").native(), "--name", "k"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = backup_json(r);
  EXPECT_GE(j["resumed"].get<int>(), finished);
  EXPECT_EQ(j["data_files"].get<int>(), files - j["resumed"].get<int>());
  EXPECT_LT(j["bytes_to_receiver"].get<std::uint64_t>(),
            total - static_cast<std::uint64_t>(finished) * size + 65536);
  auto diffs = compare_trees(t / "src", latest_tree(t / "repo", "k"));
  EXPECT_TRUE(diffs.empty()) << join_lines(diffs);
  EXPECT_FALSE(fs::exists(t / "repo/hosts/k/.in-progress"));
}

TEST(BackupFaults, UnreadableDirectoryIsReportedNotFatal) {
  TempDir t;
  ::chmod(t.path().c_str(), 0755);
  write_text(t / "src/open/readable", "x");
  write_text(t / "src/secret/hidden", "x");
  ::chmod((t / "src").c_str(), 0755);
  ::chmod((t / "src/open").c_str(), 0755);
  ::chmod((t / "src/secret").c_str(), 0700);
  fs::create_directories(t / "repo");
  // The agent runs as nobody, who may not enter src/secret.
  std::string as_nobody = "setpriv --reuid=65534 --regid=65534 --clear-groups " + coffer_bin();
  auto probe = coffer::run_process(coffer::split_command(as_nobody + " --version"));
  if (probe.exit_code != 0)
    GTEST_SKIP() << "nobody cannot run " << coffer_bin() << " here: " << probe.err;
  auto r = run_coffer(
      {"backup", (t / "src").native(), (t / "repo").native(), "--remote-command", as_nobody});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("secret"), std::string::npos) << r.err;
  fs::path tree = latest_tree(t / "repo", "src");
  ASSERT_FALSE(tree.empty());
  EXPECT_EQ(list_tree(tree), (std::vector<std::string>{"open", "open/readable", "secret"}));
}
