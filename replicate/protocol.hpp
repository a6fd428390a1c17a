// The replica protocol between B (`coffer replicate`, `replica status|verify`) and the helper on
// C (`coffer replica-serve DIR`): length-prefixed frames over a ByteStream, versioned by the
// first exchange, pipelined (B streams a whole upload without waiting for replies; from version 2
// the helper's ACKs keep it within a window).
// Every message and field: docs/formats/replica-protocol.md.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "coffer/replicate/manifest.hpp"
#include "coffer/util/error.hpp"
#include "coffer/util/stream.hpp"
#include "wire.hpp"

namespace coffer::replicate {

// Version 2 adds flow control (PING/PONG, ACK); version 3 adds READ (`replica fetch`). A newer
// B still speaks an older version to an older helper (and fetch then asks for an upgrade of C).
constexpr std::uint16_t kProtocolVersion = 3;
constexpr std::uint16_t kReadProtocolVersion = 3;
constexpr std::uint16_t kOldestProtocolVersion = 1;
constexpr std::uint32_t kMaxFrame = 80u << 20;

enum class Msg : std::uint8_t {
  // B -> C
  hello = 0x01,
  status = 0x02,
  init = 0x03,
  begin = 0x04,
  keep = 0x05,
  record = 0x06,
  manifest_delta = 0x07,
  commit = 0x08,
  fetch_manifest = 0x09,
  verify = 0x0a,
  ping = 0x0b,
  read = 0x0c,
  bye = 0x0f,
  // C -> B
  hello_reply = 0x81,
  state = 0x82,
  ok = 0x83,
  ack = 0x84,
  pong = 0x85,
  committed = 0x88,
  applied = 0x89,
  manifest_data = 0x8a,
  verify_hashes = 0x8b,
  verify_end = 0x8c,
  read_data = 0x8d,
  read_zeros = 0x8e,
  read_end = 0x8f,
  error = 0xff,
};

struct Frame {
  Msg type{};
  std::vector<std::byte> payload;
};

// An error the peer reported in an ERROR frame (as opposed to the link failing).
class PeerError : public Error {
 public:
  using Error::Error;
};

// Framed, buffered, counted I/O over a ByteStream, with an optional upload rate limit.
class Channel {
 public:
  Channel(ByteStream& stream, std::uint64_t rate_limit = 0);

  void send(Msg type, std::span<const std::byte> payload = {});
  // A frame whose payload is head followed by body, without copying a large body.
  void send(Msg type, std::span<const std::byte> head, std::span<const std::byte> body);
  void flush();
  // Flushes, then reads the next frame. An ERROR frame is raised as the Error it carries;
  // end of stream is an Error (kind failed) unless `eof_ok`, which returns nullopt instead.
  std::optional<Frame> receive(bool eof_ok = false);
  Frame expect(Msg type);
  // Sends an ERROR frame (best effort: the peer may be gone).
  void send_error(const Error& e) noexcept;

  // Flow control (protocol 2): the receiving side acknowledges, every `every` bytes, how many it
  // has read (ACK); the sending side keeps at most `window` bytes unacknowledged. Why: OpenSSH's
  // sshd grows its buffer for a channel 32 KiB at a time, copying it into fresh memory at each
  // step, whenever the helper falls behind; a stream kept within ~1 MiB of the helper never
  // makes it grow (docs/replication.md). ACKs are consumed here; receive() never returns them.
  void send_acks(std::uint64_t every) { ack_every_ = every; }
  void limit_in_flight(std::uint64_t window) { window_ = window; }

  std::uint64_t bytes_sent() const { return sent_; }
  std::uint64_t bytes_received() const { return received_; }
  const std::string& peer() const { return stream_.peer(); }

 private:
  void write(std::span<const std::byte> data);
  [[noreturn]] void lost(const Error& cause);
  std::optional<Frame> read_frame(bool eof_ok);
  [[noreturn]] void raise(const Frame& error_frame);
  void pace(std::size_t n);
  void got(std::size_t n);
  void wait_for_window(std::size_t n);

  std::uint64_t ack_every_ = 0, acked_sent_ = 0;  // receiving side
  std::uint64_t window_ = 0, acked_ = 0;          // sending side
  std::deque<Frame> early_;                       // frames read while waiting for an ACK

  ByteStream& stream_;
  std::vector<std::byte> out_;
  std::vector<std::byte> in_;
  std::size_t in_pos_ = 0, in_end_ = 0;
  std::uint64_t sent_ = 0, received_ = 0;
  std::uint64_t rate_limit_;
  std::chrono::steady_clock::time_point pace_start_;
};

// ---- The helper's report of C's directory (HELLO_REPLY and STATE) ----

enum class DirKind : std::uint8_t { absent = 0, empty = 1, replica = 2, foreign = 3 };

enum class RecordType : std::uint8_t { data = 1, zero = 2, manifest_delta = 3, commit = 4 };

struct RecordInfo {
  RecordType type{};
  std::uint64_t offset = 0;
  std::uint32_t length = 0;
  Hash128 checksum;
};

struct JournalHeader {
  std::uint64_t base_generation = 0;
  std::uint64_t new_generation = 0;
  Id16 replica_id{};
  std::uint64_t new_size = 0;
  std::uint32_t detect_block_size = 0;
  std::uint32_t manifest_block_size = 0;
  friend bool operator==(const JournalHeader&, const JournalHeader&) = default;
};

struct PartialJournal {
  JournalHeader header;
  std::vector<RecordInfo> records;  // the valid prefix, in file order
  std::uint64_t bytes = 0;
};

struct ReplicaState {
  DirKind kind = DirKind::absent;
  std::string detail;  // foreign: what is there; replica: a problem with the manifest, if any
  std::optional<std::uint64_t> image_size;
  std::optional<ManifestHeader> manifest;
  Hash256 manifest_mac;
  std::optional<std::uint64_t> recovered_generation;  // committed journal applied at connect
  std::optional<PartialJournal> partial;
};

std::vector<std::byte> encode_state(const ReplicaState& s);
ReplicaState decode_state(std::span<const std::byte> payload, const std::string& peer);

std::vector<std::byte> encode_journal_header(const JournalHeader& h);
JournalHeader decode_journal_header(Decoder& d);

// The checksum of a journal record: XXH3-128 over its type, offset, length and payload.
Hash128 record_checksum(RecordType type, std::uint64_t offset, std::uint32_t length,
                        std::span<const std::byte> payload);

}  // namespace coffer::replicate
