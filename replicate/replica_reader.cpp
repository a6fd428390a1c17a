// ReplicaReader (include/coffer/replicate/replica_reader.hpp): `replica fetch`'s order of trust,
// then blocks on demand. The READ exchange is the one `replica fetch` uses
// (docs/formats/replica-protocol.md): ranges of whole 64 KiB blocks, answered in order by
// READ_DATA / READ_ZEROS pieces and READ_END.
#include "coffer/replicate/replica_reader.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>

#include "client.hpp"
#include "coffer/replicate/manifest.hpp"
#include "coffer/util/fd.hpp"
#include "coffer/util/signals.hpp"
#include "read_wire.hpp"

namespace coffer::replicate {

struct ReplicaReader::Impl {
  ReplicaReaderOptions o;
  std::unique_ptr<ClientSession> session;
  Manifest m;
  std::uint64_t c_size = 0;
  std::filesystem::path header;
  UniqueFd header_fd;
  UnlockedHeader unlocked;
  std::mutex mu;  // one request at a time; libext2fs may be called from one thread only anyway
  std::map<std::uint64_t, std::vector<std::byte>> cache;  // block -> its bytes (not zero blocks)
  std::deque<std::uint64_t> order;                        // insertion order, for dropping
  std::uint64_t cached_bytes = 0;
  ReplicaReadStats st;

  std::uint64_t blocks() const { return m.entries.size(); }
  std::uint64_t length(std::uint64_t b) const {
    const std::uint64_t M = m.header.block_size;
    return std::min<std::uint64_t>(M, m.header.image_size - b * M);
  }
  bool zero(std::uint64_t b) const { return m.entries[b] == zero_block_hash(m.header.block_size); }

  [[noreturn]] void bad(std::uint64_t b, const std::string& why) const {
    fail(ErrorKind::integrity, "read replica", o.source,
         fmt::format("the block at offset {} ({} bytes) {} (generation {}); nothing was used "
                     "from it",
                     b * m.header.block_size, length(b), why, m.header.generation));
  }

  void check(std::uint64_t b, std::span<const std::byte> data) const {
    const std::uint32_t M = m.header.block_size;
    Hash256 h;
    if (data.size() == M) {
      h = strong_hash(data);
    } else {  // the image's last block, hashed zero-padded as in the manifest
      std::vector<std::byte> padded(M);
      std::memcpy(padded.data(), data.data(), data.size());
      h = strong_hash(padded);
    }
    if (h != m.entries[b]) bad(b, "does not match the manifest");
  }

  void keep(std::uint64_t b, std::vector<std::byte> data) {
    cached_bytes += data.size();
    cache[b] = std::move(data);
    order.push_back(b);
    while (cached_bytes > o.cache_bytes && order.size() > 1) {
      auto it = cache.find(order.front());
      order.pop_front();
      if (it == cache.end()) continue;
      cached_bytes -= it->second.size();
      cache.erase(it);
    }
  }

  // Downloads, checks and keeps every block of `wanted` (ascending, unique) not held yet.
  void download(const std::vector<std::uint64_t>& wanted) {
    const std::uint64_t M = m.header.block_size;
    std::vector<ReadRange> ranges;
    std::vector<std::uint64_t> asked;
    for (std::uint64_t b : wanted) {
      if (b >= blocks() || zero(b) || cache.count(b)) continue;
      if (b * M + length(b) > c_size)
        bad(b, fmt::format("is missing: C's image is truncated (it ends at {})", c_size));
      if (!ranges.empty() && ranges.back().end() == b * M)
        ranges.back().length += M;
      else
        ranges.push_back({b * M, M});
      asked.push_back(b);
    }
    if (ranges.empty()) return;
    Channel& ch = session->channel();
    std::map<std::uint64_t, std::vector<std::byte>> got;  // block -> bytes received so far
    for (std::size_t i = 0; i < ranges.size(); i += kMaxReadRanges) {
      std::span<const ReadRange> batch =
          std::span(ranges).subspan(i, std::min(kMaxReadRanges, ranges.size() - i));
      ch.send(Msg::read, encode_read(batch));
      std::size_t ri = 0;
      std::uint64_t cursor = 0;
      for (;;) {
        Frame f = *ch.receive();
        check_interrupted("read replica");
        Decoder d(f.payload, "answer to READ from " + o.source, ErrorKind::failed);
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
        // Pieces cover whole blocks except at the end of C's image; zeros are materialised.
        for (std::uint64_t at = off; at < off + len;) {
          std::uint64_t b = at / M;
          std::uint64_t n = std::min(off + len, (b + 1) * M) - at;
          auto& buf = got[b];
          std::size_t was = buf.size();
          buf.resize(was + n);
          if (f.type == Msg::read_data)
            std::memcpy(buf.data() + was, f.payload.data() + 8 + (at - off), n);
          at += n;
        }
      }
    }
    st.received = ch.bytes_received();
    for (std::uint64_t b : asked) {
      auto it = got.find(b);
      if (it == got.end() || it->second.size() != length(b)) bad(b, "was not sent by C");
      check(b, it->second);
      ++st.blocks;
      st.bytes += it->second.size();
      keep(b, std::move(it->second));
    }
  }

  // The header blocks, checked, at their offsets of the private header file.
  void write_header_blocks(const std::vector<std::uint64_t>& bs) {
    download(bs);
    for (std::uint64_t b : bs) {
      if (b >= blocks() || zero(b)) continue;
      const auto& data = cache.at(b);
      pwrite_all(header_fd.get(), data, static_cast<off_t>(b * m.header.block_size), header);
    }
  }

  void open_header_file() {
    const char* tmp = std::getenv("TMPDIR");
    std::string templ = std::string(tmp && *tmp ? tmp : "/tmp") + "/coffer-replica-header.XXXXXX";
    int fd = ::mkostemp(templ.data(), O_CLOEXEC);
    if (fd < 0) throw_errno("create", templ, errno);
    header_fd = UniqueFd(fd);
    header = templ;
    if (::ftruncate(fd, static_cast<off_t>(m.header.image_size)) != 0)
      throw_errno("resize", header, errno);
  }

  void connect() {
    TargetSpec t;
    t.name = "restore";
    t.dest = o.source;
    t.remote_command = o.remote_command;
    t.ssh = o.ssh;
    session = std::make_unique<ClientSession>(t);
    ReplicaState rs = session->hello();
    if (rs.kind != DirKind::replica)
      fail(ErrorKind::missing, "read replica", o.source,
           rs.kind == DirKind::foreign ? "not a coffer replica: " + rs.detail
                                       : "there is no replica there");
    if (session->version() < kReadProtocolVersion)
      fail(ErrorKind::failed, "read replica", o.source,
           fmt::format("the coffer serving it speaks replica protocol {}, reading blocks needs {}: "
                       "upgrade coffer on C",
                       session->version(), kReadProtocolVersion));
    if (!rs.manifest || !rs.image_size)
      fail(ErrorKind::missing, "read replica", o.source,
           rs.detail.empty() ? "the replica has no manifest or image yet"
                             : "its manifest is unreadable: " + rs.detail);
    m = session->fetch_manifest();
    c_size = *rs.image_size;
    st.received = session->channel().bytes_received();
  }

  // As `replica fetch`: block 0 (the LUKS2 metadata), then the key slots it names, then the
  // unlock, the UUID and the MAC. Nothing C says is believed before the MAC verified.
  void authenticate() {
    open_header_file();
    write_header_blocks({0});
    std::vector<std::uint64_t> slots;
    const std::uint64_t M = m.header.block_size;
    for (auto [offset, len] : o.header_areas(header))
      for (std::uint64_t b = offset / M; b * M < offset + len && b < blocks(); ++b)
        slots.push_back(b);
    std::sort(slots.begin(), slots.end());
    slots.erase(std::unique(slots.begin(), slots.end()), slots.end());
    write_header_blocks(slots);
    unlocked = o.unlock(header);
    if (unlocked.uuid != format_uuid(m.header.luks_uuid))
      fail(ErrorKind::integrity, "read replica", o.source,
           fmt::format("its LUKS2 header is of vault {}, its manifest of vault {}", unlocked.uuid,
                       format_uuid(m.header.luks_uuid)));
    if (!m.mac_valid(derive_mac_key(unlocked.volume_key)))
      fail(ErrorKind::integrity, "read replica", o.source,
           "the manifest does not verify with this vault's key: it was altered, or made for "
           "another replica");
  }
};

ReplicaReader::ReplicaReader(const ReplicaReaderOptions& options)
    : impl_(std::make_unique<Impl>()) {
  impl_->o = options;
  if (!options.unlock || !options.header_areas)
    fail(ErrorKind::usage, "read replica", options.source, "no way to unlock the vault's header");
  try {
    impl_->connect();
    impl_->authenticate();
  } catch (...) {
    if (!impl_->header.empty()) ::unlink(impl_->header.c_str());
    throw;
  }
}

ReplicaReader::~ReplicaReader() {
  if (impl_->session) {
    try {
      impl_->session->bye();
    } catch (const std::exception&) {
      // The link may be gone already; everything read was checked when it arrived.
    }
  }
  if (!impl_->header.empty()) ::unlink(impl_->header.c_str());
}

const std::filesystem::path& ReplicaReader::header_file() const {
  return impl_->header;
}
const Secret& ReplicaReader::volume_key() const {
  return impl_->unlocked.volume_key;
}
std::uint64_t ReplicaReader::image_size() const {
  return impl_->m.header.image_size;
}
std::uint64_t ReplicaReader::generation() const {
  return impl_->m.header.generation;
}
std::int64_t ReplicaReader::time() const {
  return impl_->m.header.time;
}

void ReplicaReader::prefetch(std::span<const std::pair<std::uint64_t, std::uint64_t>> ranges) {
  std::lock_guard lock(impl_->mu);
  const std::uint64_t M = impl_->m.header.block_size;
  std::vector<std::uint64_t> wanted;
  for (auto [offset, len] : ranges)
    for (std::uint64_t b = offset / M; b * M < offset + len && b < impl_->blocks(); ++b)
      wanted.push_back(b);
  std::sort(wanted.begin(), wanted.end());
  wanted.erase(std::unique(wanted.begin(), wanted.end()), wanted.end());
  // No more than half the cache ahead: what is fetched must still be there when it is read.
  std::erase_if(wanted, [&](std::uint64_t b) { return impl_->cache.count(b) || impl_->zero(b); });
  if (wanted.size() > impl_->o.cache_bytes / 2 / M) wanted.resize(impl_->o.cache_bytes / 2 / M);
  impl_->download(wanted);
}

void ReplicaReader::read(std::uint64_t offset, std::span<std::byte> out) {
  std::lock_guard lock(impl_->mu);
  Impl& i = *impl_;
  const std::uint64_t M = i.m.header.block_size;
  if (offset > i.m.header.image_size || out.size() > i.m.header.image_size - offset)
    fail(ErrorKind::failed, "read replica", i.o.source,
         fmt::format("offset {} is past the end of the image", offset));
  std::vector<std::uint64_t> wanted;
  for (std::uint64_t b = offset / M; b * M < offset + out.size(); ++b) wanted.push_back(b);
  i.download(wanted);
  for (std::uint64_t at = offset; at < offset + out.size();) {
    std::uint64_t b = at / M;
    std::uint64_t n = std::min<std::uint64_t>(offset + out.size(), (b + 1) * M) - at;
    std::byte* dst = out.data() + (at - offset);
    if (i.zero(b)) {
      std::memset(dst, 0, n);
    } else {
      auto it = i.cache.find(b);
      if (it == i.cache.end()) {  // dropped from the cache by this very request: fetch again
        i.download({b});
        it = i.cache.find(b);
      }
      std::memcpy(dst, it->second.data() + (at - b * M), n);
    }
    at += n;
  }
}

ReplicaReadStats ReplicaReader::stats() const {
  std::lock_guard lock(impl_->mu);
  return impl_->st;
}

}  // namespace coffer::replicate
