#include <fcntl.h>
#include <gtest/gtest.h>
#include <chrono>
#include <thread>
#include <vector>

#include "coffer/util/background_sync.hpp"
#include "coffer/util/fd.hpp"
#include "temp_dir.hpp"

using namespace coffer;
using coffer::test::TempDir;

namespace {

bool wait_for_flushes(const BackgroundSync& s, std::uint64_t n) {
  for (int i = 0; i < 500 && s.flushes() < n; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  return s.flushes() >= n;
}

}  // namespace

TEST(BackgroundSync, FlushesOncePerStretchWritten) {
  TempDir dir;
  UniqueFd fd = open_fd(dir / "f", O_RDWR | O_CREAT, 0600);
  BackgroundSync sync(fd.get(), 1 << 20);
  std::vector<std::byte> data(256 << 10, std::byte{7});
  for (int i = 0; i < 3; ++i) {
    pwrite_all(fd.get(), data, static_cast<off_t>(i * data.size()), "f");
    sync.wrote(data.size());
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(sync.flushes(), 0u) << "768 KiB is less than a stretch";
  pwrite_all(fd.get(), data, static_cast<off_t>(3 * data.size()), "f");
  sync.wrote(data.size());
  EXPECT_TRUE(wait_for_flushes(sync, 1));
}

TEST(BackgroundSync, CountsFromSeveralThreads) {
  TempDir dir;
  UniqueFd fd = open_fd(dir / "f", O_RDWR | O_CREAT, 0600);
  BackgroundSync sync(fd.get(), 1 << 20);
  std::vector<std::thread> writers;
  for (int t = 0; t < 4; ++t)
    writers.emplace_back([&] {
      for (int i = 0; i < 64; ++i) sync.wrote(4096);  // 4 x 256 KiB: exactly one stretch
    });
  for (auto& w : writers) w.join();
  EXPECT_TRUE(wait_for_flushes(sync, 1));
}

TEST(BackgroundSync, IdleObjectStartsNoThreadAndEndsCleanly) {
  TempDir dir;
  UniqueFd fd = open_fd(dir / "f", O_RDWR | O_CREAT, 0600);
  { BackgroundSync sync(fd.get()); }
  BackgroundSync on_bad_fd(-1);
  on_bad_fd.wrote(1ull << 40);  // no descriptor to flush: nothing to do, nothing thrown
  EXPECT_EQ(on_bad_fd.flushes(), 0u);
}
