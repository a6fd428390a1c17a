#include <gtest/gtest.h>
#include <unistd.h>

#include "coffer/util/error.hpp"
#include "coffer/util/lock.hpp"
#include "coffer/util/process.hpp"
#include "temp_dir.hpp"

using namespace coffer;
using coffer::test::TempDir;

TEST(FileLock, SecondHolderIsToldThePid) {
  TempDir dir;
  // flock locks belong to the open file description, so a second open in this process
  // conflicts just like another process would.
  FileLock first(dir / "vault.lock");
  try {
    FileLock second(dir / "vault.lock");
    FAIL() << "second lock succeeded";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::locked);
    EXPECT_NE(std::string(e.what()).find("locked by pid " + std::to_string(::getpid())),
              std::string::npos)
        << e.what();
  }
}

TEST(FileLock, ReleasedOnDestruction) {
  TempDir dir;
  { FileLock first(dir / "l"); }
  EXPECT_NO_THROW(FileLock second(dir / "l"));
}

TEST(FileLock, DeadHolderDoesNotBlock) {
  TempDir dir;
  // A process that takes the lock and is killed: the kernel releases it.
  RunResult r =
      run_process({"sh", "-c", "exec 9>" + (dir / "l").native() + "; flock 9; kill -9 $$"});
  EXPECT_EQ(r.exit_code, 128 + 9);
  EXPECT_NO_THROW(FileLock mine(dir / "l"));
}

TEST(FileLock, WaitsForARelease) {
  TempDir dir;
  SpawnOptions opts;
  opts.null_stdin = true;
  Process holder({"flock", (dir / "l").native(), "sleep", "0.5"}, opts);
  ::usleep(200000);
  EXPECT_THROW(FileLock(dir / "l"), Error);
  EXPECT_NO_THROW(FileLock(dir / "l", std::chrono::milliseconds(5000)));
  holder.wait();
}
