// Flushes a file that is being written to stable storage in the background, every so many bytes,
// so that the fsync the caller must still do at the end waits only for the last stretch.
//
// Why: an fsync costs in proportion to what was written since the last one (on virtual disks a
// flush makes the host write back everything the guest wrote). Flushing while the writer is busy
// receiving or hashing hides that cost; a single fsync after 300 MB stalls the commit for
// hundreds of milliseconds (docs/replication.md).
//
// The flushes go through a separate open file description: a write error they meet stays
// reported to the caller's descriptor, whose final fsync_fd() is the one that counts.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <thread>

#include "coffer/util/fd.hpp"

namespace coffer {

class BackgroundSync {
 public:
  // `fd` stays owned by the caller and open while this object lives.
  explicit BackgroundSync(int fd, std::uint64_t every = 64ull << 20);
  ~BackgroundSync();  // waits for a flush in progress
  BackgroundSync(const BackgroundSync&) = delete;
  BackgroundSync& operator=(const BackgroundSync&) = delete;

  // Counts bytes written; every `every` bytes a flush starts (unless one is still running).
  // Callable from several threads.
  void wrote(std::uint64_t bytes);
  std::uint64_t flushes() const;

 private:
  void run();

  UniqueFd fd_;
  const std::uint64_t every_;
  std::uint64_t since_ = 0;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool wanted_ = false, stopping_ = false;
  std::uint64_t flushes_ = 0;
  std::thread thread_;
};

}  // namespace coffer
