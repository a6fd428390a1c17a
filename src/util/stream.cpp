#include "coffer/util/stream.hpp"

#include <cerrno>
#include <unistd.h>

#include "coffer/util/error.hpp"

namespace coffer {

void ByteStream::read_exact(std::span<std::byte> buf) {
  std::size_t done = 0;
  while (done < buf.size()) {
    std::size_t n = read_some(buf.subspan(done));
    if (n == 0) fail(ErrorKind::failed, "read from", peer(), "connection closed by peer");
    done += n;
  }
}

FdStream::FdStream(UniqueFd in, UniqueFd out, std::string peer)
    : owned_in_(std::move(in)), owned_out_(std::move(out)), peer_(std::move(peer)) {
  in_ = owned_in_.get();
  out_ = owned_out_.get();
}

FdStream::FdStream(int in, int out, std::string peer) : in_(in), out_(out), peer_(std::move(peer)) {}

std::size_t FdStream::read_some(std::span<std::byte> buf) {
  for (;;) {
    ssize_t n = ::read(in_, buf.data(), buf.size());
    if (n >= 0) return static_cast<std::size_t>(n);
    if (errno != EINTR) throw_errno("read from", peer_, errno);
  }
}

void FdStream::write_all(std::span<const std::byte> data) {
  if (out_ < 0) fail(ErrorKind::failed, "write to", peer_, "stream already closed for writing");
  coffer::write_all(out_, data, peer_);
}

void FdStream::close_write() {
  if (owned_out_) owned_out_.reset();
  out_ = -1;
}

}  // namespace coffer
