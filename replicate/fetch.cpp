// `coffer replica fetch`: the order of trust. Nothing C says is believed until the manifest's
// MAC verifies, and the MAC key comes from a header that was itself checked against that
// manifest: a header, manifest or block changed by C fails one of the two checks.
#include "coffer/replicate/fetch.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <numeric>
#include <thread>

#include "chunks.hpp"
#include "client.hpp"
#include "coffer/util/atomic_file.hpp"
#include "coffer/util/fd.hpp"
#include "coffer/util/log.hpp"
#include "coffer/util/signals.hpp"
#include "coffer/util/units.hpp"
#include "fetch_blocks.hpp"
#include "fetch_expect.hpp"
#include "read_wire.hpp"

namespace coffer::replicate {
namespace {

std::filesystem::path record_path(const std::filesystem::path& partial) {
  return partial.native() + ".json";
}

class Fetcher {
 public:
  Fetcher(const FetchOptions& o, FetchResult& r) : o_(o), r_(r) {}

  void go() {
    auto t0 = std::chrono::steady_clock::now();
    r_.source = o_.source;
    r_.out = o_.out;
    r_.partial = fetch_partial_path(o_.out);
    if (std::filesystem::exists(std::filesystem::symlink_status(o_.out)))
      fail(ErrorKind::failed, "fetch replica into", o_.out.native(),
           "the file exists; fetch never overwrites one");
    TargetSpec t;
    t.name = "fetch";
    t.dest = o_.source;
    t.remote_command = o_.remote_command;
    t.ssh = o_.ssh;
    ClientSession s(t);
    session_ = &s;
    ReplicaState st = s.hello();
    if (st.kind != DirKind::replica)
      fail(ErrorKind::missing, "fetch replica from", o_.source,
           st.kind == DirKind::foreign ? "not a coffer replica: " + st.detail
                                       : "there is no replica there");
    if (s.version() < kReadProtocolVersion)
      fail(ErrorKind::failed, "fetch replica from", o_.source,
           fmt::format("the coffer serving it speaks replica protocol {}, a fetch needs {}: "
                       "upgrade coffer on C",
                       s.version(), kReadProtocolVersion));
    if (!st.manifest)
      fail(ErrorKind::missing, "fetch replica from", o_.source,
           st.detail.empty() ? "the replica has no manifest yet"
                             : "its manifest is unreadable: " + st.detail);
    if (!st.image_size)
      fail(ErrorKind::missing, "fetch replica from", o_.source, "the replica has no image file");
    m_ = s.fetch_manifest();
    r_.bytes_received = s.channel().bytes_received();
    const ManifestHeader& h = m_.header;
    r_.blocks = m_.entries.size();
    r_.image_size = h.image_size;
    c_size_ = *st.image_size;
    if (o_.expect_uuid && format_uuid(h.luks_uuid) != *o_.expect_uuid)
      fail(ErrorKind::integrity, "fetch replica from", o_.source,
           fmt::format("it is a replica of vault {}, not of {}", format_uuid(h.luks_uuid),
                       *o_.expect_uuid));
    // What else says which replica this must be, checked before the key is tried (a wrong key
    // and another vault's header look alike to the unlock): fetch_expect.hpp.
    if (std::filesystem::exists(r_.partial))
      if (auto note = read_partial_note(record_path(r_.partial)))
        check_against_partial_note(*note, r_.partial, m_, o_.source);
    if (auto agreed = check_against_b_records(o_.out, m_, o_.source)) {
      log::info("{}", *agreed);
      r_.b_record = *agreed;
    }

    open_partial();
    // First only what unlocking reads: the metadata (in block 0 for coffer's vaults), then the
    // key slots it names; a wrong key is then known after a few hundred KiB, and the unlock
    // never reads a byte the manifest did not vouch for (the rest of the header stays holes).
    download({0});
    refuse_bad_header();
    std::vector<std::uint64_t> slots;
    for (auto [offset, length] : o_.header_areas(r_.partial))
      for (std::uint64_t b = offset / h.block_size;
           b * h.block_size < offset + length && b < r_.blocks; ++b)
        slots.push_back(b);
    std::sort(slots.begin(), slots.end());
    slots.erase(std::unique(slots.begin(), slots.end()), slots.end());
    download(slots);
    refuse_bad_header();
    authenticate();
    std::vector<std::uint64_t> rest(r_.blocks);
    std::iota(rest.begin(), rest.end(), std::uint64_t{0});
    download(rest);
    // Truncated where generation N has only zeros: nothing to download there, still a bad replica.
    const std::uint64_t M = h.block_size;
    if (const std::uint64_t cut = c_size_ / M * M;
        c_size_ < r_.image_size && std::none_of(r_.bad_blocks.begin(), r_.bad_blocks.end(),
                                                [&](const BadBlock& b) { return b.offset == cut; }))
      r_.bad_blocks.push_back(
          {cut, r_.image_size - cut,
           fmt::format("missing: C's image is truncated (it ends at {}; generation {} is {} bytes)",
                       c_size_, h.generation, r_.image_size)});
    if (c_size_ > r_.image_size)
      r_.bad_blocks.push_back(
          {r_.image_size, c_size_ - r_.image_size,
           fmt::format("C's image is extended: it is {} bytes, generation {} ends at {}", c_size_,
                       h.generation, r_.image_size)});
    if (has_bad())
      refuse(fmt::format("{} bad block(s) in the replica on {} against generation {} of {}",
                         r_.bad_blocks.size(), o_.source, h.generation, format_time(h.time)));
    s.bye();
    r_.bytes_received = s.channel().bytes_received();
    session_ = nullptr;
    finish();
    r_.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }

  // Called on the way out of a failure: a partial that holds nothing verified, or one of a
  // replica that failed verification, is removed; one cut short by the link is kept to resume.
  // A wrong key keeps the partial file of an earlier run (what it holds verified then).
  void cleanup_after(const Error& e) noexcept {
    if (!opened_) return;
    bool cut_short = e.kind() == ErrorKind::failed || e.kind() == ErrorKind::interrupted;
    if (e.kind() == ErrorKind::integrity || (created_ && !cut_short)) remove_partial();
  }

 private:
  void open_partial() {
    std::error_code ec;
    r_.resumed = std::filesystem::exists(r_.partial, ec);
    created_ = !r_.resumed;
    fd_ = open_fd(r_.partial, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    opened_ = true;
    if (::ftruncate(fd_.get(), static_cast<off_t>(r_.image_size)) != 0)
      throw_errno("resize", r_.partial, errno);
    if (r_.resumed) {
      state_ = scan_partial(fd_.get(), r_.partial, m_, o_.threads);
      for (std::uint64_t b = 0; b < state_.size(); ++b)
        if (state_[b] == BlockState::good &&
            m_.entries[b] != zero_block_hash(m_.header.block_size)) {
          ++r_.blocks_kept;
          r_.bytes_kept += block_length(b);
        }
      log::info("resuming the fetch in {}: {} of it verified again and kept", r_.partial.native(),
                format_size(r_.bytes_kept));
    } else {
      state_.assign(r_.blocks, BlockState::needed);
    }
    // Blocks of zeros are holes in the partial file already: nothing to download.
    const Hash256& zero = zero_block_hash(m_.header.block_size);
    for (std::uint64_t b = 0; b < state_.size(); ++b) {
      if (state_[b] == BlockState::needed && m_.entries[b] == zero) state_[b] = BlockState::good;
      if (state_[b] == BlockState::needed) to_download_ += block_length(b);
    }
  }

  std::uint64_t block_length(std::uint64_t b) const {
    const std::uint64_t M = m_.header.block_size;
    return std::min(M, r_.image_size - b * M);
  }

  void refuse_bad_header() {
    if (has_bad())
      refuse(fmt::format("the LUKS2 header on {} does not match its manifest: {} bad block(s)",
                         o_.source, r_.bad_blocks.size()));
  }

  // Every needed block of `wanted` (ascending) that C's image holds, in one pipelined stream.
  void download(const std::vector<std::uint64_t>& wanted) {
    const std::uint64_t M = m_.header.block_size;
    const ManifestHeader& h = m_.header;
    std::vector<ReadRange> ranges;
    std::vector<std::uint64_t> asked;
    for (std::uint64_t b : wanted) {
      if (b >= r_.blocks || state_[b] != BlockState::needed) continue;
      if (b * M + block_length(b) > c_size_) {  // not wholly in C's image
        bad(b, fmt::format(
                   "missing: C's image is truncated (it ends at {}; generation {} is {} bytes)",
                   c_size_, h.generation, h.image_size));
        continue;
      }
      if (!ranges.empty() && ranges.back().end() == b * M)
        ranges.back().length += M;
      else
        ranges.push_back({b * M, M});
      asked.push_back(b);
    }
    BlockSink sink(fd_.get(), r_.partial, m_, state_, o_.threads);
    Channel& ch = session_->channel();
    auto start = std::chrono::steady_clock::now();
    const std::uint64_t received_before = ch.bytes_received();
    for (std::size_t i = 0; i < ranges.size(); i += kMaxReadRanges) {
      std::span<const ReadRange> batch =
          std::span(ranges).subspan(i, std::min(kMaxReadRanges, ranges.size() - i));
      ch.send(Msg::read, encode_read(batch));
      std::size_t ri = 0;
      std::uint64_t cursor = 0;
      for (;;) {
        Frame f = *ch.receive();
        check_interrupted("fetch replica");
        r_.bytes_received = ch.bytes_received();
        pace(start, r_.bytes_received - received_before);
        Decoder d(f.payload, "answer to READ from " + o_.source, ErrorKind::failed);
        if (f.type == Msg::read_end) break;
        if (f.type != Msg::read_data && f.type != Msg::read_zeros)
          d.malformed("unexpected message");
        std::uint64_t off = d.u64();
        std::uint64_t len = f.type == Msg::read_data ? d.remaining() : d.u64();
        while (ri < batch.size() && off >= batch[ri].end()) ++ri;
        if (ri == batch.size() || off < batch[ri].offset || off < cursor || len == 0 ||
            off + len > batch[ri].end())
          d.malformed(fmt::format("C answered with {} bytes at offset {}, which were not asked for",
                                  len, off));
        cursor = off + len;
        downloaded_ += len;
        if (o_.on_progress) o_.on_progress(downloaded_, to_download_);
        if (f.type == Msg::read_data)
          sink.data(off, std::move(f.payload), 8);
        else
          sink.zeros(off, len);
      }
      sink.drain();
      r_.bytes_received = ch.bytes_received();
    }
    r_.blocks_fetched += sink.blocks_written();
    r_.bytes_fetched += sink.bytes_written();
    for (std::uint64_t b : asked) {
      if (state_[b] == BlockState::bad)
        bad(b, sink.reason(b));
      else if (state_[b] == BlockState::needed)
        bad(b, "C did not send it");
    }
    std::sort(r_.bad_blocks.begin(), r_.bad_blocks.end(),
              [](const BadBlock& x, const BadBlock& y) { return x.offset < y.offset; });
  }

  void pace(std::chrono::steady_clock::time_point start, std::uint64_t bytes) const {
    if (!o_.limit_rate) return;
    std::this_thread::sleep_until(start +
                                  std::chrono::microseconds(bytes * 1'000'000 / o_.limit_rate));
  }

  void bad(std::uint64_t b, std::string why) {
    const std::uint64_t M = m_.header.block_size;
    state_[b] = BlockState::bad;
    r_.bad_blocks.push_back({b * M, block_length(b), std::move(why)});
  }
  bool has_bad() const { return !r_.bad_blocks.empty(); }

  // The header verified against the manifest: unlock it, then check the manifest with its key.
  void authenticate() {
    UnlockedHeader u = o_.unlock(r_.partial);
    const ManifestHeader& h = m_.header;
    r_.uuid = u.uuid;
    if (u.uuid != format_uuid(h.luks_uuid))
      refuse(fmt::format("the LUKS2 header on {} is of vault {}, its manifest of vault {}",
                         o_.source, u.uuid, format_uuid(h.luks_uuid)));
    if (!m_.mac_valid(derive_mac_key(u.volume_key)))
      refuse(fmt::format(
          "the manifest on {} does not verify with this vault's key: it was altered, or "
          "made for another replica",
          o_.source));
    r_.verified = true;
    r_.generation = h.generation;
    r_.time = h.time;
    std::string found =
        fmt::format("{} holds generation {} of {}", o_.source, h.generation, format_time(h.time));
    if (o_.expect_generation && h.generation < *o_.expect_generation)
      refuse(
          fmt::format("{}, older than the expected generation {}", found, *o_.expect_generation));
    if (o_.not_older_than && h.time < *o_.not_older_than)
      refuse(fmt::format("{}, older than {}", found, format_time(*o_.not_older_than)));
    write_record();
  }

  // A small note beside the partial image saying what it is (the data itself is re-verified on
  // resume, so the note need not be trusted or durable).
  void write_record() const {
    nlohmann::json j = {{"source", o_.source},
                        {"generation", m_.header.generation},
                        {"time", m_.header.time},
                        {"uuid", r_.uuid},
                        {"replica_id", to_hex(m_.header.replica_id.data(), 16)},
                        {"image_size", r_.image_size},
                        {"manifest_mac", to_hex(m_.mac.bytes.data(), m_.mac.bytes.size())}};
    write_file_atomic(record_path(r_.partial), j.dump() + "\n", 0600, Durability::replace_only);
  }

  [[noreturn]] void refuse(const std::string& why) {
    fail(ErrorKind::integrity, "fetch replica from", o_.source, why);
  }

  // Everything verified: make it durable, then give it its name (never over an existing file).
  void finish() {
    fsync_fd(fd_.get(), r_.partial);
    fd_.reset();
    if (::renameat2(AT_FDCWD, r_.partial.c_str(), AT_FDCWD, o_.out.c_str(), RENAME_NOREPLACE) != 0)
      throw_errno("rename " + r_.partial.native() + " to", o_.out, errno);
    std::filesystem::path dir = o_.out.parent_path();
    fsync_dir(dir.empty() ? "." : dir);
    std::error_code ec;
    std::filesystem::remove(record_path(r_.partial), ec);
  }

  void remove_partial() noexcept {
    fd_.reset();
    std::error_code ec;
    std::filesystem::remove(r_.partial, ec);
    std::filesystem::remove(record_path(r_.partial), ec);
  }

  const FetchOptions& o_;
  FetchResult& r_;
  ClientSession* session_ = nullptr;
  Manifest m_;
  std::uint64_t c_size_ = 0;
  std::uint64_t to_download_ = 0, downloaded_ = 0;  // block data, for on_progress
  std::vector<BlockState> state_;
  UniqueFd fd_;
  bool created_ = false, opened_ = false;
};

}  // namespace

std::filesystem::path fetch_partial_path(const std::filesystem::path& out) {
  std::filesystem::path dir = out.parent_path();
  return dir / ("." + out.filename().native() + ".coffer-fetch");
}

void fetch(const FetchOptions& o, FetchResult& r) {
  if (!o.unlock || !o.header_areas)
    fail(ErrorKind::usage, "fetch replica from", o.source, "no way to unlock the vault's header");
  Fetcher f(o, r);
  try {
    f.go();
  } catch (const Error& e) {
    f.cleanup_after(e);
    throw;
  }
}

}  // namespace coffer::replicate
