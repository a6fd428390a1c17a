#include "fetch_blocks.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/falloc.h>

#include "chunks.hpp"
#include "coffer/util/error.hpp"
#include "coffer/util/fd.hpp"

namespace coffer::replicate {
namespace {

constexpr std::uint64_t kMaxQueued = 64ull << 20;

bool all_zero(std::span<const std::byte> b) {
  return b.empty() ||
         (b[0] == std::byte{0} && std::memcmp(b.data(), b.data() + 1, b.size() - 1) == 0);
}

void punch(int fd, const std::filesystem::path& shown, std::uint64_t offset, std::uint64_t length) {
  if (::fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                  static_cast<off_t>(length)) == 0)
    return;
  // A file system without hole punching: write the zeros instead (same contents, not sparse).
  if (errno != EOPNOTSUPP) throw_errno("punch a hole in", shown, errno);
  std::vector<std::byte> zeros(length);
  pwrite_all(fd, zeros, static_cast<off_t>(offset), shown);
}

}  // namespace

BlockSink::BlockSink(int fd, const std::filesystem::path& shown, const Manifest& m,
                     std::vector<BlockState>& state, unsigned threads)
    : fd_(fd), shown_(shown), m_(m), state_(state) {
  for (unsigned i = 0; i < hashing_threads(threads); ++i) pool_.emplace_back([this] { work(); });
}

BlockSink::~BlockSink() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : pool_) t.join();
}

void BlockSink::data(std::uint64_t offset, std::vector<std::byte> payload, std::size_t skip) {
  const std::uint64_t M = m_.header.block_size, size = m_.header.image_size;
  const std::uint64_t len = payload.size() - skip;
  // Pieces start on a block; only the image's last block may be short.
  if (offset % M || offset + len > size || (len % M && offset + len != size))
    fail(ErrorKind::failed, "fetch replica into", shown_.native(),
         fmt::format("protocol error: C sent {} bytes at offset {}, not whole blocks of the image",
                     len, offset));
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return error_ || queued_bytes_ < kMaxQueued; });
  if (error_) std::rethrow_exception(error_);
  queued_bytes_ += len;
  queue_.push_back({offset, std::move(payload), skip});
  cv_.notify_all();
}

void BlockSink::zeros(std::uint64_t offset, std::uint64_t length) {
  const std::uint64_t M = m_.header.block_size;
  const Hash256& zero = zero_block_hash(m_.header.block_size);
  for (std::uint64_t b = offset / M; b * M < offset + length && b < state_.size(); ++b) {
    if (m_.entries[b] == zero)
      state_[b] = BlockState::good;  // the partial file holds a hole there
    else
      mark_bad(b, fmt::format("C holds zeros where generation {} has data", m_.header.generation));
  }
}

void BlockSink::mark_bad(std::uint64_t block, std::string why) {
  std::lock_guard lock(mu_);
  state_[block] = BlockState::bad;
  reasons_[block] = std::move(why);
}

std::string BlockSink::reason(std::uint64_t block) const {
  std::lock_guard lock(mu_);
  auto it = reasons_.find(block);
  return it == reasons_.end() ? std::string() : it->second;
}

void BlockSink::drain() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return error_ || (queue_.empty() && busy_ == 0); });
  if (error_) std::rethrow_exception(error_);
}

void BlockSink::work() {
  for (;;) {
    Job job;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (stop_) return;
      job = std::move(queue_.front());
      queue_.pop_front();
      ++busy_;
    }
    std::exception_ptr failed;
    try {
      check(job);
    } catch (...) {
      failed = std::current_exception();
    }
    {
      std::lock_guard lock(mu_);
      --busy_;
      queued_bytes_ -= job.payload.size() - job.skip;
      if (failed && !error_) error_ = failed;
    }
    cv_.notify_all();
  }
}

void BlockSink::check(const Job& job) {
  const std::uint64_t M = m_.header.block_size;
  auto all = std::span<const std::byte>(job.payload).subspan(job.skip);
  std::vector<std::byte> padded;
  std::uint64_t blocks = 0, bytes = 0;
  for (std::uint64_t rel = 0; rel < all.size(); rel += M) {
    const std::uint64_t b = (job.offset + rel) / M;
    auto block = all.subspan(rel, std::min<std::uint64_t>(M, all.size() - rel));
    Hash256 h;
    if (block.size() == M) {
      h = strong_hash(block);
    } else {  // the image's last block, hashed zero-padded as in the manifest
      padded.assign(M, std::byte{0});
      std::memcpy(padded.data(), block.data(), block.size());
      h = strong_hash(padded);
    }
    if (h != m_.entries[b]) {
      mark_bad(b, fmt::format("contents differ from generation {}", m_.header.generation));
      continue;
    }
    if (!all_zero(block)) {
      pwrite_all(fd_, block, static_cast<off_t>(job.offset + rel), shown_);
      ++blocks;
      bytes += block.size();
    }
    state_[b] = BlockState::good;  // each block belongs to one job: no other thread writes it
  }
  std::lock_guard lock(mu_);
  written_blocks_ += blocks;
  written_bytes_ += bytes;
}

std::vector<BlockState> scan_partial(int fd, const std::filesystem::path& shown, const Manifest& m,
                                     unsigned threads) {
  const std::uint32_t M = m.header.block_size;
  const std::uint64_t size = m.header.image_size;
  Geometry g = Geometry::make(size, M, M);
  const Hash256& zero = zero_block_hash(M);
  std::vector<BlockState> state(m.entries.size(), BlockState::needed);
  std::vector<std::uint64_t> stale;  // data where the manifest has zeros
  std::mutex mu;
  BufferPool buffers;
  auto work = [&](std::uint64_t index) {
    Chunk c;
    c.data = buffers.take();
    const std::uint64_t offset = index * g.chunk, length = std::min(g.chunk, size - offset);
    read_chunk(fd, shown, offset, length, g.chunk, M, c);
    const std::uint64_t n = Geometry::blocks(length, M), first = offset / M;
    const std::vector<char> has = c.data_map(M, n);
    for (std::uint64_t j = 0; j < n; ++j) {
      const std::uint64_t b = first + j;
      Hash256 h = has[j] ? strong_hash(c.bytes(j * M, M)) : zero;
      if (h == m.entries[b])
        state[b] = BlockState::good;
      else if (m.entries[b] == zero) {
        std::lock_guard lock(mu);
        stale.push_back(b);
      }
    }
    buffers.give(std::move(c.data));
    return 0;
  };
  unsigned t = hashing_threads(threads);
  run_ordered<int>(g.chunks(), t, t * 2 + 2, work, [](std::uint64_t, int) {});
  for (std::uint64_t b : stale) {
    punch(fd, shown, b * M, std::min<std::uint64_t>(M, size - b * M));
    state[b] = BlockState::good;
  }
  return state;
}

}  // namespace coffer::replicate
