// Frames and varints of the transfer protocol (docs/formats/protocol.md), over a ByteStream.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "coffer/util/error.hpp"
#include "coffer/util/stream.hpp"

namespace coffer::transfer {

enum class Msg : std::uint8_t {
  hello = 1,
  hello_ok = 2,
  error = 3,
  list = 10,
  list_end = 11,
  warning = 12,
  request_data = 20,
  request_delta = 21,
  signature = 22,
  signature_end = 23,
  finish = 24,
  file_begin = 30,
  data = 31,
  delta = 32,
  file_end = 33,
  done = 34,
  summary = 40,
};

constexpr std::uint32_t kMaxPayload = 4u << 20;
constexpr std::size_t kFrameHeader = 5;

// Appends protocol values to a byte buffer.
class Encoder {
 public:
  void u8(std::uint8_t v) { buf_.push_back(static_cast<char>(v)); }
  void uvar(std::uint64_t v);
  void svar(std::int64_t v) {
    uvar((static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63));
  }
  void bytes(std::string_view s) {
    uvar(s.size());
    buf_.append(s);
  }
  void raw(std::string_view s) { buf_.append(s); }
  const std::string& data() const { return buf_; }
  std::size_t size() const { return buf_.size(); }
  void clear() { buf_.clear(); }

 private:
  std::string buf_;
};

// Reads protocol values from a payload; any malformation throws a protocol error naming `peer`.
class Decoder {
 public:
  Decoder(std::string_view data, const std::string& peer) : rest_(data), peer_(peer) {}
  std::uint8_t u8();
  std::uint64_t uvar();
  std::int64_t svar() {
    std::uint64_t v = uvar();
    return static_cast<std::int64_t>(v >> 1) ^ -static_cast<std::int64_t>(v & 1);
  }
  std::string_view bytes();
  std::string_view raw(std::size_t n);
  std::string_view rest() {
    auto r = rest_;
    rest_ = {};
    return r;
  }
  bool at_end() const { return rest_.empty(); }
  void expect_end();
  [[noreturn]] void malformed(std::string_view what) const;

 private:
  std::string_view rest_;
  const std::string& peer_;
};

struct Frame {
  Msg type{};
  std::string_view payload;  // valid until the next receive()
};

// Framed messages over a ByteStream. Output is buffered and flushed before any read that would
// block, so a message queued by one side is always on its way before that side waits.
class Channel {
 public:
  explicit Channel(ByteStream& stream);
  Channel(const Channel&) = delete;

  void send(Msg type, std::string_view payload);
  // A frame whose payload is `head` followed by `body`, without copying a large body.
  void send2(Msg type, std::string_view head, std::span<const std::byte> body);
  void flush();
  Frame receive();
  // Throws a protocol error naming the peer: "unexpected <what> message".
  [[noreturn]] void unexpected(const Frame& f, std::string_view during) const;
  void close_write();

  const std::string& peer() const { return stream_.peer(); }
  std::uint64_t bytes_in() const { return bytes_in_; }
  std::uint64_t bytes_out() const { return bytes_out_; }

 private:
  void fill(std::size_t need);
  ByteStream& stream_;
  std::string out_;
  std::vector<std::byte> in_;
  std::size_t in_start_ = 0, in_end_ = 0;
  std::uint64_t bytes_in_ = 0, bytes_out_ = 0;
};

// Sends an ERROR frame (best effort: the peer may already be gone). Returns whether it went out.
bool send_error(Channel& ch, std::string_view message) noexcept;
// What the peer reported in an ERROR frame: it knows already, and reports it itself.
class PeerError : public Error {
 public:
  using Error::Error;
};
// Throws the PeerError an ERROR frame carries.
[[noreturn]] void throw_peer_error(const Channel& ch, const Frame& f);

}  // namespace coffer::transfer
