// The checking half of `replica fetch`: blocks that arrive from C are hashed on a pool of
// threads and compared with the manifest; good ones are written into the partial image (blocks of
// zeros never are: they stay holes), bad ones are remembered with the reason. And the scan of a
// partial image left by an interrupted fetch, which keeps only what still verifies.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "coffer/replicate/manifest.hpp"

namespace coffer::replicate {

enum class BlockState : std::uint8_t { needed = 0, good = 1, bad = 2 };

class BlockSink {
 public:
  // `state` has one entry per manifest block; the sink marks the blocks it checks.
  BlockSink(int fd, const std::filesystem::path& shown, const Manifest& m,
            std::vector<BlockState>& state, unsigned threads);
  ~BlockSink();
  BlockSink(const BlockSink&) = delete;
  BlockSink& operator=(const BlockSink&) = delete;

  // Data for the blocks from `offset` (a block boundary): payload[skip...]. Waits while more
  // than a bounded amount is queued, so a fast link cannot outrun the hashing by much.
  void data(std::uint64_t offset, std::vector<std::byte> payload, std::size_t skip);
  // C says these blocks are zeros (a hole).
  void zeros(std::uint64_t offset, std::uint64_t length);
  // Waits until everything queued is checked and written; rethrows a worker's error.
  void drain();

  std::string reason(std::uint64_t block) const;
  std::uint64_t blocks_written() const { return written_blocks_; }
  std::uint64_t bytes_written() const { return written_bytes_; }

 private:
  struct Job {
    std::uint64_t offset = 0;
    std::vector<std::byte> payload;
    std::size_t skip = 0;
  };
  void work();
  void check(const Job& job);
  void mark_bad(std::uint64_t block, std::string why);

  int fd_;
  std::filesystem::path shown_;
  const Manifest& m_;
  std::vector<BlockState>& state_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;
  std::uint64_t queued_bytes_ = 0, busy_ = 0;
  bool stop_ = false;
  std::exception_ptr error_;
  std::map<std::uint64_t, std::string> reasons_;
  std::uint64_t written_blocks_ = 0, written_bytes_ = 0;
  std::vector<std::thread> pool_;
};

// Hashes what `fd` (the partial image of an interrupted fetch, already cut to the manifest's
// size) holds and returns, per block, good (matches the manifest; holes where the manifest has
// zeros) or needed. Blocks holding data where the manifest has zeros are punched back to holes.
std::vector<BlockState> scan_partial(int fd, const std::filesystem::path& shown, const Manifest& m,
                                     unsigned threads);

}  // namespace coffer::replicate
