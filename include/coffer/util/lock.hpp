// An flock(2)-based exclusive lock on a file that holds the owner's pid. The kernel drops the
// lock when the holder dies, however it dies, so a crash never leaves a stale lock behind.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>

#include "coffer/util/fd.hpp"

namespace coffer {

class FileLock {
 public:
  // Takes the lock. With `wait` empty it fails at once with Error(kind locked,
  // "lock", path, "locked by pid N"); otherwise it retries until the duration has passed.
  explicit FileLock(std::filesystem::path path,
                    std::optional<std::chrono::milliseconds> wait = std::nullopt);
  FileLock(FileLock&&) noexcept = default;
  ~FileLock();

  const std::filesystem::path& path() const noexcept { return path_; }

 private:
  std::filesystem::path path_;
  UniqueFd fd_;
};

}  // namespace coffer
