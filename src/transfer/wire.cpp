#include "wire.hpp"

#include <cstring>

#include "coffer/util/error.hpp"

namespace coffer::transfer {

void Encoder::uvar(std::uint64_t v) {
  while (v >= 0x80) {
    buf_.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  buf_.push_back(static_cast<char>(v));
}

std::uint8_t Decoder::u8() {
  if (rest_.empty()) malformed("truncated message");
  auto v = static_cast<std::uint8_t>(rest_[0]);
  rest_.remove_prefix(1);
  return v;
}

std::uint64_t Decoder::uvar() {
  std::uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    std::uint8_t b = u8();
    v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) return v;
  }
  malformed("varint too long");
}

std::string_view Decoder::bytes() {
  return raw(uvar());
}

std::string_view Decoder::raw(std::size_t n) {
  if (n > rest_.size()) malformed("truncated message");
  auto v = rest_.substr(0, n);
  rest_.remove_prefix(n);
  return v;
}

void Decoder::expect_end() {
  if (!rest_.empty()) malformed("trailing bytes in message");
}

void Decoder::malformed(std::string_view what) const {
  fail(ErrorKind::failed, "read protocol from", peer_, what);
}

Channel::Channel(ByteStream& stream) : stream_(stream), in_(1 << 18) {
  out_.reserve(1 << 17);
}

namespace {
void put_header(std::string& out, Msg type, std::size_t len) {
  out.push_back(static_cast<char>(type));
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((len >> (8 * i)) & 0xff));
}
}  // namespace

void Channel::send(Msg type, std::string_view payload) {
  if (payload.size() > kMaxPayload)
    fail(ErrorKind::failed, "write protocol to", peer(), "message too large");
  put_header(out_, type, payload.size());
  out_.append(payload);
  bytes_out_ += kFrameHeader + payload.size();
  if (out_.size() >= (1u << 16)) flush();
}

void Channel::send2(Msg type, std::string_view head, std::span<const std::byte> body) {
  std::size_t len = head.size() + body.size();
  if (len > kMaxPayload) fail(ErrorKind::failed, "write protocol to", peer(), "message too large");
  put_header(out_, type, len);
  out_.append(head);
  bytes_out_ += kFrameHeader + len;
  if (body.size() < 4096) {
    out_.append(reinterpret_cast<const char*>(body.data()), body.size());
    if (out_.size() >= (1u << 16)) flush();
    return;
  }
  flush();
  stream_.write_all(body);
}

void Channel::flush() {
  if (out_.empty()) return;
  stream_.write_all(std::as_bytes(std::span(out_.data(), out_.size())));
  out_.clear();
}

void Channel::close_write() {
  flush();
  stream_.close_write();
}

void Channel::fill(std::size_t need) {
  if (in_end_ - in_start_ >= need) return;
  if (in_start_ > 0) {
    std::memmove(in_.data(), in_.data() + in_start_, in_end_ - in_start_);
    in_end_ -= in_start_;
    in_start_ = 0;
  }
  if (need > in_.size()) in_.resize(need);
  while (in_end_ < need) {
    flush();  // never wait for the peer with our own messages still in the buffer
    std::size_t n = stream_.read_some(std::span(in_.data() + in_end_, in_.size() - in_end_));
    if (n == 0) fail(ErrorKind::failed, "read from", peer(), "connection closed by peer");
    in_end_ += n;
    bytes_in_ += n;
  }
}

Frame Channel::receive() {
  fill(kFrameHeader);
  const auto* h = reinterpret_cast<const unsigned char*>(in_.data() + in_start_);
  std::uint32_t len = static_cast<std::uint32_t>(h[1]) | static_cast<std::uint32_t>(h[2]) << 8 |
                      static_cast<std::uint32_t>(h[3]) << 16 |
                      static_cast<std::uint32_t>(h[4]) << 24;
  auto type = static_cast<Msg>(h[0]);
  if (len > kMaxPayload) fail(ErrorKind::failed, "read protocol from", peer(), "frame too large");
  fill(kFrameHeader + len);
  Frame f;
  f.type = type;
  // fill() may have moved the buffer: take the pointer again.
  f.payload =
      std::string_view(reinterpret_cast<const char*>(in_.data() + in_start_ + kFrameHeader), len);
  in_start_ += kFrameHeader + len;
  return f;
}

void Channel::unexpected(const Frame& f, std::string_view during) const {
  if (f.type == Msg::error) throw_peer_error(*this, f);
  fail(ErrorKind::failed, "read protocol from", peer(),
       "unexpected message type " + std::to_string(static_cast<int>(f.type)) + " during " +
           std::string(during));
}

bool send_error(Channel& ch, std::string_view message) noexcept {
  try {
    Encoder e;
    e.bytes(message);
    ch.send(Msg::error, e.data());
    ch.flush();
    return true;
  } catch (...) {
    return false;
  }
}

void throw_peer_error(const Channel& ch, const Frame& f) {
  Decoder d(f.payload, ch.peer());
  std::string msg(d.bytes());
  throw PeerError(ErrorKind::failed, "transfer with", ch.peer(), msg);
}

}  // namespace coffer::transfer
