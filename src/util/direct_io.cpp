#include "coffer/util/direct_io.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

#include "coffer/util/error.hpp"

namespace coffer {
namespace {

constexpr std::size_t kChunk = 4 << 20;     // bytes per direct transfer
constexpr std::size_t kHugePage = 2 << 20;  // x86-64 and arm64 (4 KiB base pages)

std::uint64_t align_down(std::uint64_t x) {
  return x / kDirectAlign * kDirectAlign;
}
std::uint64_t align_up(std::uint64_t x) {
  return align_down(x + kDirectAlign - 1);
}
bool aligned(std::uint64_t x) {
  return x % kDirectAlign == 0;
}

// A direct transfer the file system turned down (EINVAL: alignment it wants bigger than ours).
bool refused(int err) {
  return err == EINVAL || err == EOPNOTSUPP;
}

// Writes `size` bytes (block-aligned, from aligned memory) at `offset` through the O_DIRECT
// descriptor; false when the file system refused before anything was written.
bool write_direct(int direct_fd, const std::byte* data, std::size_t size, std::uint64_t offset,
                  const std::filesystem::path& shown) {
  for (std::size_t done = 0; done < size;) {
    ssize_t n = ::pwrite(direct_fd, data + done, size - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && refused(errno) && done == 0) return false;
    if (n < 0) throw_errno("write", shown, errno);
    done += static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace

void AlignedBuffer::Free::operator()(std::byte* p) const noexcept {
  std::free(p);
}

AlignedBuffer::AlignedBuffer(std::size_t size) {
  reserve(size);
}

void AlignedBuffer::reserve(std::size_t size) {
  if (size <= size_) return;
  const bool huge = size >= kHugePage;
  const std::size_t align = huge ? kHugePage : kDirectAlign;
  size = (size + align - 1) / align * align;
  void* p = std::aligned_alloc(align, size);
  if (!p) throw std::bad_alloc();
  if (huge) (void)::madvise(p, size, MADV_HUGEPAGE);  // advice only: 4 KiB pages where refused
  std::unique_ptr<std::byte, Free> fresh(static_cast<std::byte*>(p));
  data_ = std::move(fresh);
  size_ = size;
}

UniqueFd reopen_direct(int fd, int access_mode, Io io) {
  if (io == Io::buffered) return {};
  // A new open file description: O_DIRECT set with fcntl would change the caller's fd too.
  std::string self = "/proc/self/fd/" + std::to_string(fd);
  int d = ::open(self.c_str(), access_mode | O_DIRECT | O_CLOEXEC);
  return UniqueFd(d);
}

// --- DirectAppender ---------------------------------------------------------------------------

DirectAppender::DirectAppender(int fd, std::filesystem::path shown, std::uint64_t end, Io io)
    : fd_(fd), shown_(std::move(shown)), direct_(reopen_direct(fd, O_WRONLY, io)), buf_(kChunk) {
  if (::ftruncate(fd_, static_cast<off_t>(end)) != 0) throw_errno("truncate", shown_, errno);
  base_ = end;
  load_tail();
}

// While direct, the buffer starts on a block boundary: it begins with the partial last block.
void DirectAppender::load_tail() {
  used_ = 0;
  if (!direct_) return;
  std::uint64_t end = base_;
  base_ = align_down(end);
  used_ = static_cast<std::size_t>(end - base_);
  if (used_ &&
      pread_full(fd_, std::span(buf_.data(), used_), static_cast<off_t>(base_), shown_) != used_)
    fail(ErrorKind::failed, "read", shown_.native(), "the file shrank while being appended to");
}

void DirectAppender::write_out(std::size_t bytes) {
  if (direct_) {
    const std::size_t whole = static_cast<std::size_t>(align_up(bytes));
    if (whole > bytes) std::memset(buf_.data() + bytes, 0, whole - bytes);
    if (write_direct(direct_.get(), buf_.data(), whole, base_, shown_)) {
      if (whole > bytes && ::ftruncate(fd_, static_cast<off_t>(base_ + bytes)) != 0)
        throw_errno("truncate", shown_, errno);
      return;
    }
    direct_.reset();  // refused: the page cache from now on
  }
  pwrite_all(fd_, std::span(buf_.data(), bytes), static_cast<off_t>(base_), shown_);
}

void DirectAppender::append(std::span<const std::byte> data) {
  while (!data.empty()) {
    std::size_t n = std::min(data.size(), buf_.size() - used_);
    std::memcpy(buf_.data() + used_, data.data(), n);
    used_ += n;
    data = data.subspan(n);
    if (used_ == buf_.size()) {
      write_out(used_);
      base_ += used_;
      used_ = 0;
    }
  }
}

void DirectAppender::flush() {
  if (!used_) return;
  write_out(used_);
  // Keep the partial last block: the next append continues it, and rewrites it whole.
  const std::size_t keep = direct_ ? used_ % kDirectAlign : 0;
  std::memmove(buf_.data(), buf_.data() + used_ - keep, keep);
  base_ += used_ - keep;
  used_ = keep;
}

void DirectAppender::truncate(std::uint64_t end) {
  flush();
  if (::ftruncate(fd_, static_cast<off_t>(end)) != 0) throw_errno("truncate", shown_, errno);
  base_ = end;
  load_tail();
}

// --- DirectReader -----------------------------------------------------------------------------

DirectReader::DirectReader(int fd, std::filesystem::path shown, Io io, std::size_t chunk)
    : fd_(fd),
      shown_(std::move(shown)),
      direct_(reopen_direct(fd, O_RDONLY, io)),
      chunk_(static_cast<std::size_t>(align_up(std::max<std::size_t>(chunk, kDirectAlign)))),
      buf_(chunk_) {}

std::span<const std::byte> DirectReader::read(std::uint64_t pos, std::size_t len) {
  if (pos >= base_ && pos + len <= base_ + filled_)
    return std::span<const std::byte>(buf_.data() + (pos - base_), len);
  base_ = direct_ ? align_down(pos) : pos;
  const std::size_t want =
      static_cast<std::size_t>(std::max<std::uint64_t>(chunk_, align_up(pos + len - base_)));
  buf_.reserve(want);
  filled_ = 0;
  if (direct_) {
    // Direct reads stop short only at the end of the file.
    for (;;) {
      ssize_t n = ::pread(direct_.get(), buf_.data() + filled_, want - filled_,
                          static_cast<off_t>(base_ + filled_));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && refused(errno) && filled_ == 0) {
        direct_.reset();
        break;
      }
      if (n < 0) throw_errno("read", shown_, errno);
      filled_ += static_cast<std::size_t>(n);
      if (n == 0 || filled_ == want || !aligned(filled_)) break;
    }
  }
  if (!direct_)
    filled_ = pread_full(fd_, std::span(buf_.data(), want), static_cast<off_t>(base_), shown_);
  if (pos - base_ >= filled_) return {};
  return std::span<const std::byte>(buf_.data() + (pos - base_),
                                    std::min<std::size_t>(len, filled_ - (pos - base_)));
}

// --- DirectWriter -----------------------------------------------------------------------------

DirectWriter::DirectWriter(int fd, std::filesystem::path shown, Io io)
    : fd_(fd), shown_(std::move(shown)), direct_(reopen_direct(fd, O_WRONLY, io)) {}

void DirectWriter::pwrite(std::span<const std::byte> data, std::uint64_t offset) {
  if (direct_ && aligned(offset) && aligned(data.size()) && !data.empty()) {
    buf_.reserve(data.size());
    std::memcpy(buf_.data(), data.data(), data.size());
    if (write_direct(direct_.get(), buf_.data(), data.size(), offset, shown_)) return;
    direct_.reset();  // refused: the page cache from now on
  }
  pwrite_all(fd_, data, static_cast<off_t>(offset), shown_);
}

}  // namespace coffer
