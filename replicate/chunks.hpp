// Reading an image in large aligned chunks, skipping holes, hashed on all cores.
//
// A chunk is read with SEEK_DATA/SEEK_HOLE: only the allocated extents are read, the rest of
// the buffer is zeros and remembered as hole, so a block wholly inside a hole needs neither a
// read nor a hash (its hash is a constant). Chunks are processed by a pool of threads, a bounded
// window ahead of a single consumer that receives the results in image order.
#pragma once

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <mutex>
#include <optional>
#include <span>
#include <thread>
#include <utility>
#include <vector>

#include "coffer/util/direct_io.hpp"

#include "coffer/util/signals.hpp"

namespace coffer::replicate {

constexpr std::uint64_t kMinChunkSize = 4ull << 20;

// Block sizes of one scan: detection blocks (fast hash, B's digest) and manifest blocks (strong
// hash). Both are powers of two; a chunk is a multiple of both.
struct Geometry {
  std::uint64_t image_size = 0;
  std::uint32_t detect = 0;
  std::uint32_t manifest = 0;
  std::uint64_t chunk = 0;

  static Geometry make(std::uint64_t image_size, std::uint32_t detect, std::uint32_t manifest);
  static std::uint64_t blocks(std::uint64_t size, std::uint64_t block) {
    return (size + block - 1) / block;
  }
  std::uint64_t chunks() const { return blocks(image_size, chunk); }
  std::uint64_t detect_blocks() const { return blocks(image_size, detect); }
  std::uint64_t manifest_blocks() const { return blocks(image_size, manifest); }
};

struct Chunk {
  std::uint64_t index = 0;
  std::uint64_t offset = 0;
  std::uint64_t length = 0;  // bytes of the image in this chunk; the buffer is zero beyond
  AlignedBuffer data;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> extents;  // allocated [begin, end), relative

  bool has_data(std::uint64_t rel, std::uint64_t len) const;
  // For each of `count` blocks of `block` bytes from the chunk's start: does it hold any data?
  // One pass over the extents, however fragmented the file is.
  std::vector<char> data_map(std::uint64_t block, std::uint64_t count) const;
  std::span<const std::byte> bytes(std::uint64_t rel, std::uint64_t len) const {
    return std::span<const std::byte>(data.data(), data.size()).subspan(rel, len);
  }
};

// Reads [offset, offset+length) of fd into `out` (a buffer of `capacity` bytes). `shown` names the
// file in errors; a short read means the file shrank under us. Only the parts of `align`-sized
// blocks that hold some data are valid (holes in them zeroed, and the tail after the image's
// end): callers never read a block without data, its hash is a constant. Zeroing whole hole
// blocks would cost a memset of every hole of a sparse 16 GiB image.
void read_chunk(int fd, const std::filesystem::path& shown, std::uint64_t offset,
                std::uint64_t length, std::uint64_t capacity, std::uint64_t align, Chunk& out);

// Threads to hash with: `requested`, or every core when 0.
unsigned hashing_threads(unsigned requested);

// Runs work(i) for i in [0, n) on `threads` threads, at most `window` results ahead of the
// consumer, and calls consume(i, result) in order on the calling thread. The first exception
// (from a worker or the consumer) stops the pool and is rethrown here.
template <typename Result, typename Work, typename Consume>
void run_ordered(std::uint64_t n, unsigned threads, unsigned window, Work work, Consume consume) {
  if (n == 0) return;
  threads = std::max(1u, threads);
  window = std::max(window, threads);
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::optional<Result>> slots(window);
  std::uint64_t next_issue = 0, next_consume = 0;
  std::exception_ptr error;
  bool stop = false;

  auto worker = [&] {
    for (;;) {
      std::uint64_t i;
      {
        std::unique_lock lock(mu);
        cv.wait(lock,
                [&] { return stop || next_issue >= n || next_issue < next_consume + window; });
        if (stop || next_issue >= n) return;
        i = next_issue++;
      }
      try {
        Result r = work(i);
        std::lock_guard lock(mu);
        slots[i % window] = std::move(r);
      } catch (...) {
        std::lock_guard lock(mu);
        if (!error) error = std::current_exception();
        stop = true;
      }
      cv.notify_all();
    }
  };
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < threads; ++t) pool.emplace_back(worker);
  auto finish = [&] {
    {
      std::lock_guard lock(mu);
      stop = true;
    }
    cv.notify_all();
    for (auto& t : pool) t.join();
  };
  try {
    for (std::uint64_t i = 0; i < n; ++i) {
      Result r;
      {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return error || slots[i % window].has_value(); });
        if (error) break;
        r = std::move(*slots[i % window]);
        slots[i % window].reset();
        next_consume = i + 1;
      }
      cv.notify_all();
      check_interrupted("read image");
      consume(i, std::move(r));
    }
  } catch (...) {
    finish();
    throw;
  }
  finish();
  if (error) std::rethrow_exception(error);
}

// A few reusable chunk buffers, so a scan does not fault in fresh memory for every chunk.
class BufferPool {
 public:
  AlignedBuffer take();
  void give(AlignedBuffer buf);

 private:
  std::mutex mu_;
  std::vector<AlignedBuffer> free_;
};

}  // namespace coffer::replicate
