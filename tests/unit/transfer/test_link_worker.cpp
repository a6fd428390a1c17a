#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <csignal>

#include "coffer/util/error.hpp"
#include "coffer/util/signals.hpp"
#include "link_worker.hpp"
#include "temp_dir.hpp"

using coffer::transfer::LinkWorker;

namespace {
int open_fds() {
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
    (void)e;
    ++n;
  }
  return n;
}
}  // namespace

TEST(LinkWorker, LinksAndReportsFailures) {
  coffer::test::TempDir t;
  std::filesystem::create_directories(t / "from");
  std::filesystem::create_directories(t / "to");
  coffer::test::write_text(t / "from/a", "a");
  int from = ::open((t / "from").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int to = ::open((t / "to").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(from, 0);
  ASSERT_GE(to, 0);
  LinkWorker w;
  w.add(1, from, to, 0, "a");
  w.add(1, from, to, 1, "missing");
  auto failed = w.drain();
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0].id, 1u);
  EXPECT_EQ(failed[0].err, ENOENT);
  struct stat a {
  }, b{};
  ::stat((t / "from/a").c_str(), &a);
  ::stat((t / "to/a").c_str(), &b);
  EXPECT_EQ(a.st_ino, b.st_ino);
  ::close(from);
  ::close(to);
}

TEST(LinkWorker, FailingToDuplicateADirectoryLeavesNothingOpen) {
  coffer::test::TempDir t;
  int dir = ::open(t.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(dir, 0);
  LinkWorker w;
  int before = open_fds() - 1;  // the directory_iterator's own fd
  rlimit old{};
  ::getrlimit(RLIMIT_NOFILE, &old);
  // New descriptors take the lowest free number, and every number below it is in use: a limit
  // just above it leaves room for exactly one, so the first duplicate succeeds and the second
  // fails.
  int lowest_free = ::dup(dir);
  ASSERT_GE(lowest_free, 0);
  ::close(lowest_free);
  rlimit low = old;
  low.rlim_cur = static_cast<rlim_t>(lowest_free) + 1;
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
  int base = open_fds() - 1;
  EXPECT_THROW(w.add(1, dir, dir, 0, "x"), coffer::Error);
  EXPECT_EQ(open_fds() - 1, base) << "a duplicated descriptor leaked";
  ::setrlimit(RLIMIT_NOFILE, &old);
  EXPECT_EQ(open_fds() - 1, before);
  ::close(dir);
}

TEST(LinkWorkerDeathTest, SigtermStopsTheLinksAndDrainSaysSo) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  coffer::test::TempDir t;
  EXPECT_EXIT(
      {
        coffer::install_interrupt_handlers();
        int dir = ::open(t.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        LinkWorker w;
        ::raise(SIGTERM);  // the flag is set: queued links are dropped, none is made
        for (std::uint32_t i = 0; i < 100000; ++i)
          w.add(1, dir, dir, i, "missing-" + std::to_string(i));
        try {
          w.drain();
        } catch (const coffer::Error& e) {
          std::_Exit(e.kind() == coffer::ErrorKind::interrupted ? 42 : 1);
        }
        std::_Exit(0);  // drain reported the links as done
      },
      ::testing::ExitedWithCode(42), "");
}
