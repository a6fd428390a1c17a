#include "coffer/util/background_sync.hpp"

#include <fcntl.h>
#include <unistd.h>
#include <string>

namespace coffer {

BackgroundSync::BackgroundSync(int fd, std::uint64_t every)
    : fd_(::open(("/proc/self/fd/" + std::to_string(fd)).c_str(), O_RDONLY | O_CLOEXEC)),
      every_(every) {}

BackgroundSync::~BackgroundSync() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

void BackgroundSync::wrote(std::uint64_t bytes) {
  if (!fd_) return;  // no second description (no /proc): the final fsync does all the work
  std::lock_guard lock(mu_);
  since_ += bytes;
  if (since_ < every_) return;
  since_ = 0;
  wanted_ = true;
  if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
  wake_.notify_one();
}

std::uint64_t BackgroundSync::flushes() const {
  std::lock_guard lock(mu_);
  return flushes_;
}

void BackgroundSync::run() {
  std::unique_lock lock(mu_);
  for (;;) {
    wake_.wait(lock, [&] { return wanted_ || stopping_; });
    if (stopping_) return;
    wanted_ = false;
    lock.unlock();
    (void)::fdatasync(fd_.get());  // errors stay reported to the caller's descriptor (see header)
    lock.lock();
    ++flushes_;
  }
}

}  // namespace coffer
