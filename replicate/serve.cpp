// `coffer replica-serve DIR`: C's helper. One session: HELLO, then B's requests until BYE or
// end of stream. Every request is answered from DIR only.
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <future>

#include "chunks.hpp"
#include "coffer/replicate/replicate.hpp"
#include "coffer/util/log.hpp"
#include "protocol.hpp"
#include "read_wire.hpp"
#include "replica_dir.hpp"

namespace coffer::replicate {
namespace {

constexpr char kHelloMagic[16] = "coffer-replica";
constexpr std::size_t kHashesPerFrame = 16384;
constexpr std::uint64_t kAckEvery = 128 << 10;  // well under B's smallest window (1 MiB)

class Session {
 public:
  Session(const std::filesystem::path& dir, Channel& ch)
      : dir_(dir), ch_(ch), writer_(dir_.partial(), dir_.journal()) {}

  void run() {
    auto hello = ch_.receive(true);
    if (!hello) return;
    if (hello->type != Msg::hello) protocol_error("expected HELLO");
    Decoder d(hello->payload, "HELLO from B", ErrorKind::failed);
    if (std::memcmp(d.raw(16).data(), kHelloMagic, 16) != 0) protocol_error("not a coffer client");
    std::uint16_t lo = d.u16(), hi = d.u16();
    const std::uint16_t version = std::min(hi, kProtocolVersion);
    if (version < lo || version < kOldestProtocolVersion)
      fail(ErrorKind::failed, "start replica helper in", dir_.dir().native(),
           fmt::format(
               "B speaks protocol versions {}..{}, this coffer speaks {}..{}; upgrade one side", lo,
               hi, kOldestProtocolVersion, kProtocolVersion));
    std::string detail;
    std::optional<std::uint64_t> recovered;
    if (dir_.inspect(detail) == DirKind::replica) {
      dir_.lock();
      recovered = dir_.recover();
    }
    if (version >= 2) ch_.send_acks(kAckEvery);
    ch_.send(Msg::hello_reply,
             Encoder().u16(version).raw(encode_state(dir_.state(recovered))).bytes);

    for (;;) {
      std::optional<Frame> f;
      try {
        f = ch_.receive(true);
      } catch (const Error&) {
        writer_.sync();  // B went away in the middle of a frame: as below, then say why
        throw;
      }
      if (!f) {
        // B went away mid-session: keep what arrived, durably, for the next run to resume.
        writer_.sync();
        return;
      }
      if (f->type == Msg::bye) return;
      try {
        handle(*f);
      } catch (const Error& e) {
        if (e.code() == std::errc::no_space_on_device && writer_.active()) {
          // A partial upload C has no room for only holds space the admin needs back.
          writer_.discard();
          throw Error(e.kind(), e.operation(), e.subject(),
                      "no space left on the replica's file system (the partial upload was removed; "
                      "the replica still holds its last generation)",
                      {});
        }
        throw;
      }
    }
  }

 private:
  [[noreturn]] void protocol_error(std::string_view what) {
    fail(ErrorKind::failed, "serve replica", dir_.dir().native(),
         std::string("protocol error: ") + std::string(what));
  }

  void require_replica() {
    std::string detail;
    if (dir_.inspect(detail) != DirKind::replica) protocol_error("not initialised as a replica");
    dir_.lock();
  }

  void handle(const Frame& f) {
    Decoder d(f.payload, "request from B", ErrorKind::failed);
    switch (f.type) {
      case Msg::status:
        if (std::string detail; dir_.inspect(detail) == DirKind::replica) dir_.lock();
        ch_.send(Msg::state, encode_state(dir_.state(std::nullopt)));
        break;
      case Msg::init: {
        std::string detail;
        DirKind kind = dir_.inspect(detail);
        if (kind == DirKind::foreign)
          fail(ErrorKind::failed, "make a replica in", dir_.dir().native(),
               "not a coffer replica: " + detail + "; refusing to write there");
        if (kind != DirKind::replica) dir_.init();
        dir_.lock();
        ch_.send(Msg::ok);
        break;
      }
      case Msg::begin: {
        require_replica();
        JournalHeader h = decode_journal_header(d);
        bool resume = d.u8();
        if (h.manifest_block_size != kManifestBlockSize || h.detect_block_size < 4096)
          protocol_error("unsupported block sizes");
        writer_.begin(h, resume, dir_.scanned_partial());
        // Apply needs C's current manifest; reading it (megabytes, fresh memory) overlaps the
        // upload.
        if (!current_manifest_.valid() && h.base_generation != 0)
          current_manifest_ = std::async(std::launch::async, Manifest::load, dir_.manifest());
        break;
      }
      case Msg::keep:
        writer_.keep(d.u32());
        break;
      case Msg::record: {
        auto type = static_cast<RecordType>(d.u8());
        std::uint64_t offset = d.u64();
        std::uint32_t length = d.u32();
        Hash128 checksum = d.hash128();
        writer_.append(type, offset, length, checksum, d.raw(d.remaining()));
        break;
      }
      case Msg::manifest_delta: {
        std::uint32_t n = d.u32();
        writer_.append_manifest_delta(n, d.raw(d.remaining()));
        break;
      }
      case Msg::commit:
        commit(d.raw(d.remaining()));
        break;
      case Msg::fetch_manifest:
        send_manifest();
        break;
      case Msg::ping:
        ch_.send(Msg::pong);
        break;
      case Msg::verify:
        verify(d);
        break;
      case Msg::read:  // protocol 3: `replica fetch` (read_wire.hpp)
        require_replica();
        serve_read(dir_.image(), ch_, d);
        break;
      default:
        protocol_error(fmt::format("unknown message 0x{:02x}", static_cast<unsigned>(f.type)));
    }
  }

  void commit(std::span<const std::byte> head_and_mac) {
    if (head_and_mac.size() != kManifestHeaderSize + kMacSize) protocol_error("bad COMMIT");
    std::uint64_t gen = writer_.header().new_generation;
    ScannedJournal written = writer_.commit(head_and_mac, dir_.image());
    // From here on the new generation exists; it is applied even if B is gone.
    bool b_gone = false;
    try {
      ch_.send(Msg::committed, Encoder().u64(gen).bytes);
      ch_.flush();
    } catch (const Error&) {
      b_gone = true;
    }
    ApplyHints hints{&written, {}};
    if (current_manifest_.valid()) {
      try {
        hints.current = current_manifest_.get();
      } catch (const Error& e) {
        log::debug("{}; apply reads the manifest again", e.what());
      }
    }
    apply_journal(dir_.journal(), dir_.image(), dir_.manifest(), std::move(hints),
                  &applied_journal_);
    if (b_gone)
      fail(ErrorKind::failed, "report to B from", dir_.dir().native(),
           "connection lost after commit (applied anyway)");
    struct stat st {};
    ::stat(dir_.image().c_str(), &st);
    ch_.send(Msg::applied, Encoder().u64(gen).u64(static_cast<std::uint64_t>(st.st_size)).bytes);
  }

  void send_manifest() {
    require_replica();
    if (!std::filesystem::exists(dir_.manifest()))
      fail(ErrorKind::missing, "read", dir_.manifest().native(), "the replica has no manifest yet");
    std::string bytes = read_file(dir_.manifest(), O_NOFOLLOW);
    auto all = std::as_bytes(std::span(bytes.data(), bytes.size()));
    std::size_t step = 4 << 20;
    for (std::size_t off = 0;; off += step) {
      std::size_t n = std::min(step, all.size() - off);
      bool last = off + n == all.size();
      ch_.send(Msg::manifest_data, Encoder().u8(last).bytes, all.subspan(off, n));
      if (last) break;
    }
  }

  // Hashes every block of C's image: the plain strong hash (compared with the manifest) and a
  // hash keyed with B's fresh nonce (which C cannot have computed before it was asked).
  void verify(Decoder& d) {
    require_replica();
    std::array<std::byte, 32> nonce;
    std::memcpy(nonce.data(), d.raw(32).data(), 32);
    std::uint32_t block = d.u32();
    std::uint32_t threads = d.u32();
    if (block != kManifestBlockSize) protocol_error("unsupported verify block size");
    UniqueFd fd = open_fd(dir_.image(), O_RDONLY | O_NOFOLLOW);
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) throw_errno("stat", dir_.image(), errno);
    Geometry g = Geometry::make(static_cast<std::uint64_t>(st.st_size), block, block);
    std::vector<std::byte> zeros(block);
    const Hash256 zero_plain = zero_block_hash(block);
    const Hash128 zero_keyed = keyed_hash(nonce, zeros);
    BufferPool buffers;
    Encoder batch;
    std::uint64_t batch_first = 0, batch_n = 0;
    auto flush_batch = [&] {
      if (!batch_n) return;
      Encoder head;
      head.u64(batch_first).u32(static_cast<std::uint32_t>(batch_n));
      ch_.send(Msg::verify_hashes, head.bytes, batch.bytes);
      batch.bytes.clear();
      batch_first += batch_n;
      batch_n = 0;
    };
    struct Hashed {
      std::vector<std::pair<Hash256, Hash128>> blocks;
    };
    auto work = [&](std::uint64_t index) {
      Chunk c;
      c.data = buffers.take();
      std::uint64_t offset = index * g.chunk;
      std::uint64_t length = std::min(g.chunk, g.image_size - offset);
      read_chunk(fd.get(), dir_.image(), offset, length, g.chunk, block, c);
      Hashed h;
      const std::uint64_t n = Geometry::blocks(length, block);
      const std::vector<char> has = c.data_map(block, n);
      for (std::uint64_t j = 0; j < n; ++j) {
        if (!has[j])
          h.blocks.emplace_back(zero_plain, zero_keyed);
        else
          h.blocks.emplace_back(strong_hash(c.bytes(j * block, block)),
                                keyed_hash(nonce, c.bytes(j * block, block)));
      }
      buffers.give(std::move(c.data));
      return h;
    };
    unsigned t = hashing_threads(std::min<std::uint32_t>(threads, 256));
    run_ordered<Hashed>(g.chunks(), t, t * 2 + 2, work, [&](std::uint64_t, Hashed h) {
      for (const auto& [plain, keyed] : h.blocks) {
        batch.hash(plain).hash(keyed);
        if (++batch_n == kHashesPerFrame) flush_batch();
      }
    });
    flush_batch();
    ch_.send(Msg::verify_end, Encoder().u64(g.image_size).u64(g.manifest_blocks()).bytes);
  }

  // Declared first so that it closes last, after dir_ has released DIR's lock and B has gone:
  // closing it frees the applied journal's blocks, which can take tens of milliseconds.
  UniqueFd applied_journal_;
  ReplicaDir dir_;
  Channel& ch_;
  JournalWriter writer_;
  std::future<Manifest> current_manifest_;  // loading since BEGIN
};

}  // namespace

void serve(const std::filesystem::path& dir, ByteStream& stream) {
  Channel ch(stream);
  try {
    Session(dir, ch).run();
    ch.flush();
  } catch (const Error& e) {
    ch.send_error(e);
    throw;
  }
}

}  // namespace coffer::replicate
