// Bulk file I/O that bypasses the page cache (O_DIRECT) where the file system allows it.
//
// Why: C's helper writes every changed byte twice (journal, then image) and reads the journal
// back once; none of it is read again soon. Through the page cache each of those bytes costs a
// copy into freshly allocated cache pages, then writeback at fsync, and evicts the host's working
// set; on virtual machines that hand freed memory back to the hypervisor, touching fresh pages is
// the single largest cost (measured in docs/replication.md). Direct I/O moves the bytes from one
// reused, aligned buffer straight to the disk.
//
// Every class falls back to ordinary buffered I/O where O_DIRECT is refused (tmpfs before Linux
// 6.6, some network file systems, odd alignment needs), so callers never need to know which one
// ran. `Io::buffered` asks for that fallback from the start (tests run both paths).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>

#include "coffer/util/fd.hpp"

namespace coffer {

// Alignment of direct transfers: file offsets, lengths and memory. 4 KiB covers devices with
// 512-byte and 4 KiB logical blocks.
constexpr std::size_t kDirectAlign = 4096;

enum class Io { direct_if_possible, buffered };

// A heap buffer aligned for direct I/O. Move-only; contents uninitialised. Buffers of 2 MiB and
// more are backed by transparent huge pages where the kernel offers them (madvise), because the
// first touch of fresh memory costs a page fault per 4 KiB: on virtual machines that hand freed
// memory back to the host, about 4 ms per MiB, more than reading the data (docs/replication.md).
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  explicit AlignedBuffer(std::size_t size);
  std::byte* data() const { return data_.get(); }
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  // Grows (never shrinks) to at least `size` bytes; the contents are not kept.
  void reserve(std::size_t size);

 private:
  struct Free {
    void operator()(std::byte* p) const noexcept;
  };
  std::unique_ptr<std::byte, Free> data_;
  std::size_t size_ = 0;
};

// Opens a second description of the file `fd` refers to with O_DIRECT (same access mode);
// an invalid UniqueFd where the file system refuses it.
UniqueFd reopen_direct(int fd, int access_mode, Io io = Io::direct_if_possible);

// Appends to a file sequentially. Bytes are gathered in an aligned buffer and written in
// large whole-block writes; flush() writes the last partial block padded with zeros and trims
// the file back to its logical end (the padding never stays).
class DirectAppender {
 public:
  // `fd` is open for writing (used for truncation, and for every write without O_DIRECT);
  // appending starts at byte `end`, and the file beyond it is discarded.
  DirectAppender(int fd, std::filesystem::path shown, std::uint64_t end,
                 Io io = Io::direct_if_possible);
  void append(std::span<const std::byte> data);
  // Everything appended is in the file (not yet durable: fsync `fd` for that).
  void flush();
  // Drops everything from byte `end` on.
  void truncate(std::uint64_t end);
  std::uint64_t end() const { return base_ + used_; }
  bool direct() const { return static_cast<bool>(direct_); }

 private:
  void write_out(std::size_t bytes);
  void load_tail();

  int fd_;
  std::filesystem::path shown_;
  UniqueFd direct_;
  AlignedBuffer buf_;
  std::uint64_t base_ = 0;  // file offset of buf_[0]; block-aligned while direct
  std::size_t used_ = 0;
};

// Reads byte ranges of a file that is mostly read front to back, in large aligned chunks.
class DirectReader {
 public:
  // Reads `chunk` bytes at a time (more when one range is larger).
  DirectReader(int fd, std::filesystem::path shown, Io io = Io::direct_if_possible,
               std::size_t chunk = 4 << 20);
  bool direct() const { return static_cast<bool>(direct_); }
  // Bytes [pos, pos + len) of the file, fewer at its end; valid until the next call.
  std::span<const std::byte> read(std::uint64_t pos, std::size_t len);

 private:
  int fd_;
  std::filesystem::path shown_;
  UniqueFd direct_;
  std::size_t chunk_;
  AlignedBuffer buf_;
  std::uint64_t base_ = 0;
  std::size_t filled_ = 0;
};

// Positional writes: whole aligned blocks go direct (through an aligned copy), anything else
// through the page cache. fsync the file afterwards either way.
class DirectWriter {
 public:
  DirectWriter(int fd, std::filesystem::path shown, Io io = Io::direct_if_possible);
  bool direct() const { return static_cast<bool>(direct_); }
  void pwrite(std::span<const std::byte> data, std::uint64_t offset);

 private:
  int fd_;
  std::filesystem::path shown_;
  UniqueFd direct_;
  AlignedBuffer buf_;
};

}  // namespace coffer
