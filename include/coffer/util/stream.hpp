// A bidirectional byte stream to a peer: a child process over pipes (`coffer agent` run locally,
// `coffer replica-serve DIR` for a local DEST) or an SSH exec channel. Protocol code is written
// against this interface only, so every transport speaks the same framed protocol.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

#include "coffer/util/fd.hpp"

namespace coffer {

class ByteStream {
 public:
  virtual ~ByteStream() = default;
  // Reads at least one byte; returns 0 at end of stream.
  virtual std::size_t read_some(std::span<std::byte> buf) = 0;
  virtual void write_all(std::span<const std::byte> data) = 0;
  // Signals end of our output (EOF on the peer's input).
  virtual void close_write() = 0;
  // Who is at the other end, for error messages ("host:path", "local agent").
  virtual const std::string& peer() const = 0;

  // Reads exactly buf.size() bytes or throws Error("read from", peer, "connection closed").
  void read_exact(std::span<std::byte> buf);
};

// A stream over two file descriptors (either may be the same fd, e.g. a socket).
class FdStream final : public ByteStream {
 public:
  FdStream(UniqueFd in, UniqueFd out, std::string peer);
  // Borrows descriptors it does not own (stdin/stdout of `coffer agent`).
  FdStream(int in, int out, std::string peer);

  std::size_t read_some(std::span<std::byte> buf) override;
  void write_all(std::span<const std::byte> data) override;
  void close_write() override;
  const std::string& peer() const override { return peer_; }

 private:
  UniqueFd owned_in_, owned_out_;
  int in_, out_;
  std::string peer_;
};

}  // namespace coffer
