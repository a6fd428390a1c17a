#include "coffer/util/stream.hpp"

#include <poll.h>
#include <unistd.h>
#include <cerrno>

#include "coffer/util/error.hpp"
#include "coffer/util/signals.hpp"

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

FdStream::FdStream(int in, int out, std::string peer)
    : in_(in), out_(out), peer_(std::move(peer)) {}

namespace {
// Waits until `fd` is ready, checking the interrupt flag at least every second: a signal may
// be taken by another thread (the read never sees EINTR) or land just before the call blocks,
// and a peer that never answers must not make SIGINT/SIGTERM wait for it.
void wait_ready(int fd, short events) {
  for (;;) {
    pollfd p{fd, events, 0};
    int rc = ::poll(&p, 1, 1000);
    if (rc > 0) return;
    if (rc < 0 && errno != EINTR) return;  // the read or write reports the problem
    check_interrupted("waiting for the peer");
  }
}
}  // namespace

std::size_t FdStream::read_some(std::span<std::byte> buf) {
  for (;;) {
    wait_ready(in_, POLLIN);
    ssize_t n = ::read(in_, buf.data(), buf.size());
    if (n >= 0) return static_cast<std::size_t>(n);
    if (errno != EINTR) throw_errno("read from", peer_, errno);
    // A signal woke a wait for a peer that may never answer: stop here if it was SIGINT/TERM.
    check_interrupted("waiting for the peer");
  }
}

void FdStream::write_all(std::span<const std::byte> data) {
  if (out_ < 0) fail(ErrorKind::failed, "write to", peer_, "stream already closed for writing");
  while (!data.empty()) {
    wait_ready(out_, POLLOUT);
    ssize_t n = ::write(out_, data.data(), data.size());
    if (n < 0) {
      if (errno != EINTR) throw_errno("write to", peer_, errno);
      check_interrupted("waiting for the peer to read");  // a peer that never reads
      continue;
    }
    data = data.subspan(static_cast<std::size_t>(n));
  }
}

void FdStream::close_write() {
  if (owned_out_) owned_out_.reset();
  out_ = -1;
}

}  // namespace coffer
