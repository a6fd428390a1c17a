// A hostile or broken sender (tests/integration/backup/fake_agent.cpp) cannot make B spin or
// grow a file without bound: what it claims is checked against what it announced and against
// B's file system, and B stops with 130 on SIGTERM while it waits for a silent peer.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <csignal>
#include <thread>

#include "bounded_run.hpp"
#include "coffer/snapshot/layout.hpp"
#include "run_coffer.hpp"
#include "source_tree.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;
using namespace coffer::test;
using namespace std::chrono_literals;

namespace {

BoundedResult backup_with(const TempDir& t, const std::string& mode) {
  write_text(t / "src/real", "the fake agent ignores the source");
  fs::create_directories(t / "repo");
  return run_coffer_bounded({"backup", (t / "src").native(), (t / "repo").native(), "--name", "h",
                             "--remote-command", std::string(FAKE_AGENT) + " " + mode},
                            30s);
}

}  // namespace

TEST(BackupHostile, AnnouncedHugeFileEndsInSeconds) {
  TempDir t;
  auto r = backup_with(t, "huge-file");
  ASSERT_TRUE(r.exit_code) << "B still busy after 30 s with a 2^60-byte file: " << r.err;
  if (*r.exit_code == 0) {
    // A file system that holds 1 EiB (XFS, btrfs): the hole cost nothing and the file is kept.
    struct stat st {};
    ASSERT_EQ(::stat((latest_tree(t / "repo", "h") / "f").c_str(), &st), 0);
    EXPECT_EQ(static_cast<std::uint64_t>(st.st_size), std::uint64_t{1} << 60);
    return;
  }
  // ext4 (16 TiB at most): the file is refused before anything travels, with a warning.
  EXPECT_EQ(*r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("f: not kept: 1152921504606846976 bytes is more than B's file system holds"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(coffer::snapshot::list_complete(t / "repo", "h").size(), 1u);
}

TEST(BackupHostile, DataBeyondTheAnnouncedSizeIsAProtocolError) {
  TempDir t;
  auto r = backup_with(t, "far-offset");
  ASSERT_TRUE(r.exit_code) << "B still busy after 30 s with data at 2^62: " << r.err;
  EXPECT_EQ(*r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("read protocol from local agent: data beyond the announced size of f"),
            std::string::npos)
      << r.err;
  EXPECT_TRUE(coffer::snapshot::list_complete(t / "repo", "h").empty());
}

TEST(BackupHostile, FileEndBeyondTheAnnouncedSizeIsAProtocolError) {
  TempDir t;
  auto r = backup_with(t, "big-end");
  ASSERT_TRUE(r.exit_code) << "B still busy after 30 s with a file end at 2^60: " << r.err;
  EXPECT_EQ(*r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("read protocol from local agent: file end beyond the announced size of f"),
            std::string::npos)
      << r.err;
  EXPECT_TRUE(coffer::snapshot::list_complete(t / "repo", "h").empty());
}

TEST(BackupHostile, HoleInAFileListedWithoutHolesIsAProtocolError) {
  TempDir t;
  auto r = backup_with(t, "dense-gap");
  ASSERT_TRUE(r.exit_code) << "B still busy after 30 s with a 1 TiB hole in a dense file: "
                           << r.err;
  EXPECT_EQ(*r.exit_code, 1) << r.err;
  EXPECT_NE(
      r.err.find("read protocol from local agent: a hole at the end of f, listed without holes"),
      std::string::npos)
      << r.err;
}

TEST(BackupHostile, DeltaExpandingBeyondTheAnnouncedSizeIsAProtocolError) {
  TempDir t;
  // A previous version of f, so that B asks for a delta.
  write_random(t / "src/f", 1000, 3);
  fs::create_directories(t / "repo");
  ASSERT_EQ(
      run_coffer({"backup", (t / "src").native(), (t / "repo").native(), "--name", "h"}).exit_code,
      0);
  auto r = backup_with(t, "delta-bomb");
  ASSERT_TRUE(r.exit_code) << "B still busy after 30 s with a delta bomb: " << r.err;
  EXPECT_EQ(*r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find(
                "read protocol from local agent: delta result larger than the announced size of f"),
            std::string::npos)
      << r.err;
  // B stopped at the bound: the staging file never grew past the announced 1000 bytes.
  for (const auto& e : fs::directory_iterator(t / "repo/hosts/h/.in-progress/staging"))
    EXPECT_LE(fs::file_size(e.path()), 1000u) << e.path();
}

TEST(BackupHostile, SigtermWhileWaitingForASilentAgentExits130) {
  TempDir t;
  write_text(t / "src/real", "x");
  fs::create_directories(t / "repo");
  fs::path marker = t / "agent-is-silent";
  coffer::SpawnOptions o;
  o.pipe_stderr = true;
  o.null_stdin = true;
  coffer::Process p({coffer_bin(), "backup", (t / "src").native(), (t / "repo").native(),
                     "--remote-command", std::string(FAKE_AGENT) + " silent " + marker.native()},
                    o);
  auto deadline = std::chrono::steady_clock::now() + 30s;
  while (!fs::exists(marker) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(5ms);
  ASSERT_TRUE(fs::exists(marker)) << "the fake agent never started";
  p.kill(SIGTERM);
  bool ended = exited_by(p, std::chrono::steady_clock::now() + 10s);
  if (!ended) p.kill(SIGKILL);
  int rc = p.wait();
  ASSERT_TRUE(ended) << "SIGTERM did not end the run within 10 s";
  EXPECT_EQ(rc, 130);
}
