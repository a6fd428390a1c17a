#include "client.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <chrono>

#include "coffer/util/log.hpp"
#include "coffer/util/units.hpp"

namespace coffer::replicate {
namespace {
constexpr char kHelloMagic[16] = "coffer-replica";

// B's window of unacknowledged bytes: twice the bandwidth-delay product at 128 MB/s, and at
// least 1 MiB (the pipe the helper reads from holds 1 MiB). Over a LAN that is 1 MiB; over a
// long link it exceeds sshd's own channel window (2 MiB), which then is the only limit.
std::uint64_t window_for(std::chrono::steady_clock::duration rtt) {
  double seconds = std::chrono::duration<double>(rtt).count();
  return std::max<std::uint64_t>(1 << 20, static_cast<std::uint64_t>(2 * seconds * 128e6));
}
}  // namespace

ClientSession::ClientSession(const TargetSpec& target, std::uint64_t rate_limit)
    : dest_(target.dest),
      link_(start_helper(target)),
      ch_(std::make_unique<Channel>(link_->stream(), rate_limit)) {}

ClientSession::~ClientSession() = default;

ReplicaState ClientSession::hello() {
  Encoder e;
  e.raw(kHelloMagic, 16).u16(kOldestProtocolVersion).u16(kProtocolVersion);
  Frame f;
  try {
    ch_->send(Msg::hello, e.bytes);
    f = ch_->expect(Msg::hello_reply);
  } catch (const PeerError&) {
    throw;
  } catch (const Error& err) {
    // The helper never answered: say how it ended (a missing coffer on C, a wrong path...).
    if (err.kind() != ErrorKind::failed) throw;
    std::string why = link_->diagnose();
    if (why.empty()) throw;
    fail(ErrorKind::failed, "start replica helper for", dest_, why);
  }
  Decoder d(f.payload, "HELLO reply from " + dest_, ErrorKind::failed);
  std::uint16_t version = d.u16();
  if (version < kOldestProtocolVersion || version > kProtocolVersion)
    fail(ErrorKind::failed, "connect to", dest_,
         "the helper chose an unsupported protocol version");
  ReplicaState state = decode_state(d.raw(d.remaining()), dest_);
  version_ = version;
  if (version >= 2) {
    auto t0 = std::chrono::steady_clock::now();
    ch_->send(Msg::ping);
    ch_->expect(Msg::pong);
    auto rtt = std::chrono::steady_clock::now() - t0;
    std::uint64_t window = window_for(rtt);
    ch_->limit_in_flight(window);
    log::debug("round trip to {}: {:.1f} ms; at most {} in flight", dest_,
               std::chrono::duration<double, std::milli>(rtt).count(), format_size(window));
  }
  return state;
}

void ClientSession::init() {
  ch_->send(Msg::init);
  ch_->expect(Msg::ok);
}

Manifest ClientSession::fetch_manifest() {
  ch_->send(Msg::fetch_manifest);
  std::vector<std::byte> bytes;
  for (;;) {
    Frame f = ch_->expect(Msg::manifest_data);
    if (f.payload.empty()) fail(ErrorKind::failed, "read manifest from", dest_, "empty frame");
    bool last = f.payload[0] != std::byte{0};
    bytes.insert(bytes.end(), f.payload.begin() + 1, f.payload.end());
    if (bytes.size() > (1ull << 40) / kManifestBlockSize * 32 + 4096)
      fail(ErrorKind::integrity, "read manifest from", dest_, "the manifest is impossibly large");
    if (last) break;
  }
  return Manifest::decode(bytes, "manifest on " + dest_);
}

void ClientSession::bye() {
  ch_->send(Msg::bye);
  ch_->flush();
  link_->finish();
}

Assessment assess(const TargetState& ts, const ReplicaState& st, const std::string& dest) {
  const TargetRecord& r = ts.record;
  Assessment a;
  if (r.generation == 0) {
    a.standing = Standing::no_record;
    return a;
  }
  std::string committed =
      fmt::format("B committed generation {} of {} there", r.generation, format_time(r.time));
  if (!st.manifest) {
    a.standing = Standing::missing;
    a.explanation =
        st.kind == DirKind::replica && !st.detail.empty()
            ? fmt::format("the manifest on {} is unreadable ({}); {}", dest, st.detail, committed)
            : fmt::format("there is no replica at {}; {}", dest, committed);
    return a;
  }
  const ManifestHeader& c = *st.manifest;
  if (c.generation == r.generation && st.manifest_mac == r.manifest_mac) {
    a.standing = Standing::matches;
    return a;
  }
  if (c.generation == r.generation + 1) {
    if (auto pending = ts.load_manifest(c.generation); pending && pending->mac == st.manifest_mac) {
      a.standing = Standing::next_pending;
      return a;
    }
  }
  a.standing = Standing::mismatch;
  if (!r.uuid.empty() && format_uuid(c.luks_uuid) != r.uuid)
    a.explanation = fmt::format(
        "{} holds a replica of another vault (LUKS UUID {}, generation {} of {}); this vault is {}",
        dest, format_uuid(c.luks_uuid), c.generation, format_time(c.time), r.uuid);
  else if (c.replica_id != r.replica_id)
    a.explanation = fmt::format(
        "{} holds a different replica (replica id {}, generation {} of {}) than the one B keeps "
        "there (replica id {}): it was swapped",
        dest, to_hex(c.replica_id.data(), 16), c.generation, format_time(c.time),
        to_hex(r.replica_id.data(), 16));
  else if (auto h = ts.find_in_history(st.manifest_mac))
    a.explanation = fmt::format("{} was rolled back to generation {} of {}; {}", dest,
                                h->generation, format_time(h->time), committed);
  else
    a.explanation =
        fmt::format("the manifest on {} (generation {}, dated {}) is not one B committed; {}", dest,
                    c.generation, format_time(c.time), committed);
  return a;
}

}  // namespace coffer::replicate
