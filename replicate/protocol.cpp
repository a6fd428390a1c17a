#include "protocol.hpp"

#include <fmt/format.h>
#include <thread>

#include "coffer/util/signals.hpp"

namespace coffer::replicate {
namespace {

constexpr std::size_t kOutBuffer = 1 << 20;
constexpr std::size_t kInBuffer = 1 << 20;
constexpr std::size_t kDirectWrite = 256 << 10;

std::array<std::byte, 5> frame_header(Msg type, std::size_t payload) {
  if (payload + 1 > kMaxFrame)
    fail(ErrorKind::failed, "send frame", "",
         fmt::format("payload of {} bytes too large", payload));
  auto len = static_cast<std::uint32_t>(payload + 1);
  return {std::byte(len & 0xff), std::byte((len >> 8) & 0xff), std::byte((len >> 16) & 0xff),
          std::byte(len >> 24), std::byte(static_cast<std::uint8_t>(type))};
}

}  // namespace

Channel::Channel(ByteStream& stream, std::uint64_t rate_limit)
    : stream_(stream),
      in_(kInBuffer),
      rate_limit_(rate_limit),
      pace_start_(std::chrono::steady_clock::now()) {
  out_.reserve(kOutBuffer);
}

void Channel::send(Msg type, std::span<const std::byte> payload) {
  send(type, payload, {});
}

void Channel::send(Msg type, std::span<const std::byte> head, std::span<const std::byte> body) {
  auto h = frame_header(type, head.size() + body.size());
  out_.insert(out_.end(), h.begin(), h.end());
  out_.insert(out_.end(), head.begin(), head.end());
  if (body.size() >= kDirectWrite) {
    flush();
    write(body);
  } else {
    out_.insert(out_.end(), body.begin(), body.end());
    if (out_.size() >= kOutBuffer) flush();
  }
}

void Channel::flush() {
  if (out_.empty()) return;
  write(out_);
  out_.clear();
}

void Channel::pace(std::size_t n) {
  sent_ += n;
  if (!rate_limit_) return;
  auto due = pace_start_ + std::chrono::microseconds(sent_ * 1'000'000 / rate_limit_);
  std::this_thread::sleep_until(due);
}

void Channel::got(std::size_t n) {
  received_ += n;
  if (!ack_every_ || received_ - acked_sent_ < ack_every_) return;
  // Written at once, not queued behind out_: B may be waiting for it to send more.
  acked_sent_ = received_;
  auto h = frame_header(Msg::ack, 8);
  Encoder e;
  e.raw(h.data(), h.size()).u64(received_);
  try {
    stream_.write_all(e.bytes);
  } catch (const Error& err) {
    // B is gone. Stop acknowledging and let the reads run into the end of the stream: that is
    // where the helper syncs the journal records that did arrive, so the next run resumes
    // after them instead of starting over. Any other failure is an error: B would wait for
    // ACKs that never come.
    if (err.code() != std::errc::broken_pipe && err.code() != std::errc::connection_reset) throw;
    ack_every_ = 0;
  }
}

void Channel::wait_for_window(std::size_t n) {
  while (sent_ + n > acked_ + window_) {
    std::optional<Frame> f = read_frame(false);
    if (f->type == Msg::error) raise(*f);
    if (f->type != Msg::ack) early_.push_back(std::move(*f));
  }
}

void Channel::write(std::span<const std::byte> data) {
  // Paced writes go out in small slices so a rate limit is smooth, not bursty; with a window,
  // in quarters of it, so the peer's acknowledgements keep the stream moving.
  std::size_t slice = rate_limit_ ? std::max<std::size_t>(4096, rate_limit_ / 20) : data.size();
  if (window_) slice = std::min<std::size_t>(slice, window_ / 4);
  for (std::size_t done = 0; done < data.size();) {
    std::size_t n = std::min(slice, data.size() - done);
    if (window_) wait_for_window(n);  // an ERROR from the helper is raised from here as it is
    try {
      stream_.write_all(data.subspan(done, n));
    } catch (const Error& e) {
      if (e.kind() == ErrorKind::interrupted) throw;
      lost(e);
    }
    pace(n);
    done += n;
    check_interrupted("send to replica");
  }
}

void Channel::lost(const Error& cause) {
  // The helper stops reading when it fails (a full disk, say) and says why in an ERROR frame
  // before it exits: prefer its reason to our EPIPE.
  out_.clear();
  for (int i = 0; i < 64; ++i) {
    std::optional<Frame> f;
    try {
      f = read_frame(true);
    } catch (const Error&) {
      break;
    }
    if (!f) break;
    if (f->type == Msg::error) raise(*f);
  }
  throw cause;
}

std::optional<Frame> Channel::receive(bool eof_ok) {
  flush();
  std::optional<Frame> f;
  if (!early_.empty()) {
    f = std::move(early_.front());
    early_.pop_front();
  } else {
    do f = read_frame(eof_ok);
    while (f && f->type == Msg::ack);
  }
  if (f && f->type == Msg::error) raise(*f);
  return f;
}

void Channel::raise(const Frame& f) {
  Decoder d(f.payload, "error frame from " + peer(), ErrorKind::failed);
  auto kind = static_cast<ErrorKind>(d.u8());
  if (kind > ErrorKind::interrupted) kind = ErrorKind::failed;
  std::string op = d.str(), subject = d.str(), reason = d.str();
  throw PeerError(kind, op, subject, reason);
}

std::optional<Frame> Channel::read_frame(bool eof_ok) {
  auto fill = [&](std::size_t need) -> bool {
    if (in_end_ - in_pos_ >= need) return true;
    if (in_pos_ > 0) {
      std::memmove(in_.data(), in_.data() + in_pos_, in_end_ - in_pos_);
      in_end_ -= in_pos_;
      in_pos_ = 0;
    }
    while (in_end_ < need) {
      std::size_t n = stream_.read_some(std::span(in_).subspan(in_end_));
      if (n == 0) return false;
      in_end_ += n;
      got(n);
    }
    return true;
  };
  if (!fill(5)) {
    if (eof_ok && in_end_ == in_pos_) return std::nullopt;
    fail(ErrorKind::failed, "read from", peer(), "connection closed by the other side");
  }
  std::uint32_t len = 0;
  for (int i = 0; i < 4; ++i) len |= std::uint32_t(in_[in_pos_ + i]) << (8 * i);
  if (len == 0 || len > kMaxFrame)
    fail(ErrorKind::failed, "read from", peer(), fmt::format("bad frame length {}", len));
  Frame f;
  f.type = static_cast<Msg>(in_[in_pos_ + 4]);
  in_pos_ += 5;
  f.payload.resize(len - 1);
  std::size_t have = std::min<std::size_t>(f.payload.size(), in_end_ - in_pos_);
  std::memcpy(f.payload.data(), in_.data() + in_pos_, have);
  in_pos_ += have;
  if (have < f.payload.size()) {
    for (std::size_t done = have; done < f.payload.size();) {
      std::size_t n = stream_.read_some(std::span(f.payload).subspan(done));
      if (n == 0)
        fail(ErrorKind::failed, "read from", peer(), "connection closed by the other side");
      done += n;
      got(n);
    }
  }
  if (f.type == Msg::ack)
    acked_ = std::max(acked_, Decoder(f.payload, "ACK from " + peer(), ErrorKind::failed).u64());
  return f;
}

Frame Channel::expect(Msg type) {
  Frame f = *receive();
  if (f.type != type)
    fail(ErrorKind::failed, "read from", peer(),
         fmt::format("protocol error: expected message 0x{:02x}, got 0x{:02x}",
                     static_cast<unsigned>(type), static_cast<unsigned>(f.type)));
  return f;
}

void Channel::send_error(const Error& e) noexcept {
  try {
    out_.clear();
    Encoder enc;
    // The reason carries the errno text; it is sent as one string so B prints what C printed.
    std::string reason = e.reason();
    if (e.code()) reason = reason.empty() ? e.code().message() : reason + ": " + e.code().message();
    enc.u8(static_cast<std::uint8_t>(e.kind())).str(e.operation()).str(e.subject()).str(reason);
    send(Msg::error, enc.bytes);
    flush();
  } catch (...) {
  }
}

// ---- state ----

std::vector<std::byte> encode_journal_header(const JournalHeader& h) {
  Encoder e;
  e.u64(h.base_generation).u64(h.new_generation).raw(h.replica_id.data(), 16).u64(h.new_size);
  e.u32(h.detect_block_size).u32(h.manifest_block_size);
  return std::move(e.bytes);
}

JournalHeader decode_journal_header(Decoder& d) {
  JournalHeader h;
  h.base_generation = d.u64();
  h.new_generation = d.u64();
  std::memcpy(h.replica_id.data(), d.raw(16).data(), 16);
  h.new_size = d.u64();
  h.detect_block_size = d.u32();
  h.manifest_block_size = d.u32();
  return h;
}

std::vector<std::byte> encode_state(const ReplicaState& s) {
  Encoder e;
  e.u8(static_cast<std::uint8_t>(s.kind)).str(s.detail);
  e.u8(s.image_size.has_value()).u64(s.image_size.value_or(0));
  e.u8(s.manifest.has_value());
  if (s.manifest) e.raw(encode_manifest_header(*s.manifest)).hash(s.manifest_mac);
  e.u8(s.recovered_generation.has_value()).u64(s.recovered_generation.value_or(0));
  e.u8(s.partial.has_value());
  if (s.partial) {
    e.raw(encode_journal_header(s.partial->header)).u64(s.partial->bytes);
    e.u32(static_cast<std::uint32_t>(s.partial->records.size()));
    for (const auto& r : s.partial->records)
      e.u8(static_cast<std::uint8_t>(r.type)).u64(r.offset).u32(r.length).hash(r.checksum);
  }
  return std::move(e.bytes);
}

ReplicaState decode_state(std::span<const std::byte> payload, const std::string& peer) {
  Decoder d(payload, "state from " + peer, ErrorKind::failed);
  ReplicaState s;
  std::uint8_t kind = d.u8();
  if (kind > 3) d.malformed("unknown directory kind");
  s.kind = static_cast<DirKind>(kind);
  s.detail = d.str();
  bool has_size = d.u8();
  std::uint64_t size = d.u64();
  if (has_size) s.image_size = size;
  if (d.u8()) {
    s.manifest = decode_manifest_header(d.raw(kManifestHeaderSize), "manifest header from " + peer);
    s.manifest_mac = d.hash256();
  }
  bool recovered = d.u8();
  std::uint64_t gen = d.u64();
  if (recovered) s.recovered_generation = gen;
  if (d.u8()) {
    PartialJournal p;
    p.header = decode_journal_header(d);
    p.bytes = d.u64();
    std::uint32_t n = d.u32();
    if (n > d.remaining() / 29) d.malformed("record count too large");
    p.records.resize(n);
    for (auto& r : p.records) {
      r.type = static_cast<RecordType>(d.u8());
      r.offset = d.u64();
      r.length = d.u32();
      r.checksum = d.hash128();
    }
    s.partial = std::move(p);
  }
  d.expect_end();
  return s;
}

Hash128 record_checksum(RecordType type, std::uint64_t offset, std::uint32_t length,
                        std::span<const std::byte> payload) {
  Encoder e;
  e.u8(static_cast<std::uint8_t>(type))
      .u64(offset)
      .u32(length)
      .u32(static_cast<std::uint32_t>(payload.size()));
  FastHasher h;
  h.update(e.bytes);
  h.update(payload);
  return h.digest();
}

}  // namespace coffer::replicate
