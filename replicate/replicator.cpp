// `coffer replicate IMAGE DEST`: B's side of one replication run (docs/replication.md).
#include <fcntl.h>
#include <fmt/format.h>
#include <sodium.h>
#include <sys/stat.h>
#include <algorithm>
#include <chrono>
#include <ctime>
#include <future>

#include "change_scan.hpp"
#include "client.hpp"
#include "coffer/config/config.hpp"
#include "coffer/replicate/replicate.hpp"
#include "coffer/util/log.hpp"
#include "coffer/util/units.hpp"
#include "transport.hpp"

namespace coffer::replicate {
namespace {

constexpr std::uint32_t kDeltaPerFrame = 16384;

// What C holds before this run: the generation the upload builds on.
struct Base {
  std::uint64_t generation = 0;
  std::vector<Hash256> entries;
  std::optional<Digest> digest;
};

// B's manifest and digest of the generation it last recorded on C, read on another thread while
// the connection is set up: megabytes of freshly allocated memory that would otherwise wait for
// it. Taken once, and only for that generation.
class Prefetch {
 public:
  Prefetch(const TargetState& ts, std::uint32_t block_size) : generation_(ts.record.generation) {
    if (generation_ == 0) return;
    files_ = std::async(std::launch::async, [&ts, block_size, g = generation_] {
      return std::pair{ts.load_manifest(g), ts.load_digest(g, block_size)};
    });
  }

  std::optional<Manifest> manifest(const TargetState& ts, std::uint64_t gen) {
    if (!take(gen)) return ts.load_manifest(gen);
    return std::move(taken_->first);
  }
  std::optional<Digest> digest(const TargetState& ts, std::uint64_t gen, std::uint32_t block_size) {
    if (!take(gen)) return ts.load_digest(gen, block_size);
    return std::move(taken_->second);
  }

 private:
  bool take(std::uint64_t gen) {
    if (gen != generation_ || gen == 0) return false;
    if (files_.valid()) taken_ = files_.get();
    return taken_.has_value();
  }

  std::uint64_t generation_;
  std::future<std::pair<std::optional<Manifest>, std::optional<Digest>>> files_;
  std::optional<std::pair<std::optional<Manifest>, std::optional<Digest>>> taken_;
};

class Run {
 public:
  Run(const ReplicateOptions& o, TargetState& ts, ReplicateResult& res)
      : o_(o), ts_(ts), res_(res), D_(check_block_size(o.target.block_size)) {}

  void go() {
    uuid_ = parse_uuid(o_.vault.uuid);
    if (!ts_.record.uuid.empty() && ts_.record.uuid != o_.vault.uuid)
      fail(
          ErrorKind::failed, "replicate", o_.vault.image.native(),
          fmt::format("target {} holds replicas of vault {}, but this image is vault {}; use a new "
                      "target, or remove {} to start over",
                      o_.target.name, ts_.record.uuid, o_.vault.uuid, ts_.dir().native()));
    img_ = open_fd(o_.vault.image, O_RDONLY);
    struct stat before = stat_image();

    Prefetch prefetch(ts_, D_);
    ClientSession s(o_.target, o_.limit_rate);
    ReplicaState st = s.hello();
    phase("connect");
    res_.recovered_generation = st.recovered_generation;
    if (st.recovered_generation)
      log::info("{} first finished applying generation {} committed by an interrupted run",
                o_.target.dest, *st.recovered_generation);
    Base base = reconcile(s, st, prefetch);
    phase("check C's state");
    try {
      upload(s, st, base, before);
    } catch (const Error&) {
      res_.bytes_sent = s.channel().bytes_sent();  // for the report of the failed run
      throw;
    }
    s.bye();
    phase("close");
  }

  // Where a run spends its time, for -v.
  void phase(const char* what) {
    auto now = std::chrono::steady_clock::now();
    log::debug("{}: {:.3f} s", what, std::chrono::duration<double>(now - last_).count());
    last_ = now;
  }

 private:
  // The MAC key, derived from the volume key on first use: the key derivation the caller started
  // runs while we connect to C and upload, and a wrong key still fails before anything commits.
  const Secret& mac_key() {
    if (mac_key_.empty()) {
      auto t0 = std::chrono::steady_clock::now();
      mac_key_ = derive_mac_key(o_.volume_key ? *o_.volume_key : o_.unlock());
      log::debug("waited {:.3f} s for the volume key",
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    return mac_key_;
  }

  struct stat stat_image() const {
    struct stat st {};
    if (::fstat(img_.get(), &st) != 0) throw_errno("stat", o_.vault.image, errno);
    return st;
  }

  Base fresh(ClientSession& s, DirKind kind) {
    mac_key();
    if (kind != DirKind::replica) s.init();
    if (!ts_.record.has_replica_id || o_.reseed) {
      randombytes_buf(ts_.record.replica_id.data(), ts_.record.replica_id.size());
      ts_.record.has_replica_id = true;
    }
    ts_.record.generation = 0;
    ts_.record.dest = o_.target.dest;
    ts_.record.uuid = o_.vault.uuid;
    ts_.save();  // the replica id must survive a crash, so an interrupted first upload resumes
    Base b;
    b.digest = Digest{D_, 0, {}};
    return b;
  }

  Base reconcile(ClientSession& s, ReplicaState& st, Prefetch& prefetch) {
    const std::string& dest = o_.target.dest;
    if (st.kind == DirKind::foreign)
      fail(ErrorKind::failed, "replicate to", dest,
           "not a coffer replica: " + st.detail + "; refusing to write there");
    Assessment a = assess(ts_, st, dest);
    if (a.standing == Standing::missing) {
      if (st.kind == DirKind::replica && !st.detail.empty())
        fail(ErrorKind::integrity, "replicate to", dest,
             a.explanation + "; run `coffer replica verify`");
      if (!o_.reseed)
        fail(ErrorKind::missing, "replicate to", dest,
             a.explanation + "; pass --reseed to upload a new replica");
      log::warn("{}; uploading a new replica (--reseed)", a.explanation);
      return fresh(s, st.kind);
    }
    if (st.kind != DirKind::replica || !st.manifest) {
      if (st.kind == DirKind::replica && !st.detail.empty())
        fail(ErrorKind::integrity, "replicate to", dest,
             "the manifest there is unreadable: " + st.detail);
      return fresh(s, st.kind);
    }
    const ManifestHeader& c = *st.manifest;
    if (format_uuid(c.luks_uuid) != o_.vault.uuid)
      fail(ErrorKind::integrity, "replicate to", dest,
           fmt::format("it holds a replica of another vault (LUKS UUID {}); this vault is {}; "
                       "refusing to overwrite it",
                       format_uuid(c.luks_uuid), o_.vault.uuid));
    switch (a.standing) {
      case Standing::no_record: {
        Manifest m = s.fetch_manifest();
        if (m.header.generation != c.generation || !m.mac_valid(mac_key()))
          fail(ErrorKind::integrity, "replicate to", dest,
               "its manifest was not made with this vault's key; refusing to overwrite it");
        log::warn(
            "B has no record of {}; continuing from its generation {} of {} (manifest MAC "
            "checked)",
            dest, c.generation, format_time(c.time));
        ts_.record.dest = dest;
        ts_.record.uuid = o_.vault.uuid;
        ts_.promote(m);
        return {m.header.generation, std::move(m.entries), prefetch.digest(ts_, c.generation, D_)};
      }
      case Standing::next_pending:
        log::info("{} holds generation {}, committed by a run that stopped before recording it",
                  dest, c.generation);
        ts_.record.dest = dest;
        ts_.promote(*ts_.load_manifest(c.generation));
        break;
      case Standing::matches:
        break;
      default:
        fail(ErrorKind::integrity, "replicate to", dest,
             a.explanation + "; run `coffer replica verify` and investigate before replicating");
    }
    if (st.image_size != c.image_size)
      fail(ErrorKind::integrity, "replicate to", dest,
           fmt::format("its image is {} bytes but generation {} has {}: it was truncated or "
                       "extended; run `coffer replica verify`",
                       st.image_size ? std::to_string(*st.image_size) : "missing", c.generation,
                       c.image_size));
    Base b;
    b.generation = c.generation;
    std::optional<Manifest> m = prefetch.manifest(ts_, c.generation);
    if (!m || m->mac != ts_.record.manifest_mac) {
      log::warn("B's copy of manifest {} is missing; fetching it from {}", c.generation, dest);
      m = s.fetch_manifest();
      if (m->mac != ts_.record.manifest_mac || !m->mac_valid(mac_key()))
        fail(ErrorKind::integrity, "replicate to", dest, "its manifest does not match B's record");
      m->save(ts_.manifest_path(c.generation));
    }
    b.entries = std::move(m->entries);
    b.digest = prefetch.digest(ts_, c.generation, D_);
    return b;
  }

  void upload(ClientSession& s, const ReplicaState& st, Base& base, const struct stat& before) {
    Channel& ch = s.channel();
    const std::uint64_t size = static_cast<std::uint64_t>(before.st_size);
    const Geometry g = Geometry::make(size, D_, kManifestBlockSize);
    const JournalHeader jh{base.generation,   base.generation + 1, ts_.record.replica_id, size, D_,
                           kManifestBlockSize};
    const bool resume = st.partial && st.partial->header == jh && !st.partial->records.empty();
    res_.base_generation = base.generation;
    res_.image_size = size;
    res_.block_size = D_;
    res_.blocks = g.detect_blocks();
    res_.full_compare = !base.digest;
    if (res_.full_compare)
      log::info("no usable digest of generation {}: strong-hashing every block once",
                base.generation);
    // Reading, hashing and the upload do not wait for the volume key, which is still being
    // unlocked (the KDF runs for a good part of a second with default LUKS2 parameters): only
    // the manifest's MAC needs it. A wrong key stops the run as soon as the derivation ends, and
    // always before the commit: C keeps a partial journal that is never applied, and that the
    // next run with the right key resumes.
    bool begun = false;
    auto begin_upload = [&] {
      if (begun) return;
      begun = true;
      ch.send(Msg::begin, Encoder().raw(encode_journal_header(jh)).u8(resume).bytes);
    };

    // Records of an interrupted upload are kept while they equal what we would send again.
    const std::vector<RecordInfo> none;
    const std::vector<RecordInfo>& prior = resume ? st.partial->records : none;
    std::size_t next_prior = 0;
    bool matching = resume;
    std::uint32_t keep = 0;
    auto send_keep = [&] {
      if (keep) ch.send(Msg::keep, Encoder().u32(keep).bytes);
      keep = 0;
    };
    auto emit = [&](RecordType type, std::uint64_t off, std::uint32_t len,
                    std::span<const std::byte> data) {
      begin_upload();
      if (mac_key_.empty() && o_.unlock_ready && o_.unlock_ready()) {
        ch.flush();  // what was sent stays in C's partial journal even if the key is wrong
        mac_key();
      }
      Hash128 sum = record_checksum(type, off, len, data);
      if (matching && next_prior < prior.size()) {
        const RecordInfo& p = prior[next_prior];
        if (p.type == type && p.offset == off && p.length == len && p.checksum == sum) {
          ++keep;
          ++next_prior;
          ++res_.records_resumed;
          res_.bytes_resumed += data.size();
          return;
        }
      }
      matching = false;
      send_keep();
      ch.send(Msg::record,
              Encoder().u8(static_cast<std::uint8_t>(type)).u64(off).u32(len).hash(sum).bytes,
              data);
    };

    ScanInput in{img_.get(),    o_.vault.image, g, base.digest ? &*base.digest : nullptr,
                 &base.entries, o_.threads};
    ScanOutput out;
    scan_changes(in, out, [&](ChunkChanges& cc) {
      for_each_run(cc, out.digest, D_, size, [&](const ChangedRun& run) {
        res_.blocks_changed += run.blocks;
        (run.zero ? res_.bytes_zeroed : res_.bytes_changed) += run.length;
        emit(run.zero ? RecordType::zero : RecordType::data, run.offset, run.length, run.data);
      });
    });
    begin_upload();  // nothing changed: the new generation is the manifest alone
    send_keep();
    phase("read, hash and upload");
    struct stat after = stat_image();
    if (after.st_size != before.st_size || after.st_mtim.tv_sec != before.st_mtim.tv_sec ||
        after.st_mtim.tv_nsec != before.st_mtim.tv_nsec)
      fail(ErrorKind::failed, "read", o_.vault.image.native(),
           "the image changed while it was read; is the vault open?");

    Manifest m;
    m.header.generation = base.generation + 1;
    m.header.time = std::time(nullptr);
    m.header.image_size = size;
    m.header.detect_block_size = D_;
    m.header.replica_id = ts_.record.replica_id;
    m.header.luks_uuid = uuid_;
    m.entries = std::move(out.entries);
    ch.flush();  // every record reaches C before a wrong key can stop the run: the next resumes
    m.mac = m.compute_mac(mac_key());
    std::future<void> digest_saved =
        ts_.write_pending(m.header.generation, Digest{D_, size, std::move(out.digest)}, m);
    phase("write the manifest on B");

    const Hash256& zero_strong = zero_block_hash(kManifestBlockSize);
    Encoder delta;
    std::uint32_t n = 0;
    auto send_delta = [&] {
      if (n) ch.send(Msg::manifest_delta, Encoder().u32(n).bytes, delta.bytes);
      delta.bytes.clear();
      n = 0;
    };
    for (std::uint64_t i = 0; i < m.entries.size(); ++i) {
      const Hash256& old = i < base.entries.size() ? base.entries[i] : zero_strong;
      if (m.entries[i] == old) continue;
      delta.u64(i).hash(m.entries[i]);
      if (++n == kDeltaPerFrame) send_delta();
    }
    send_delta();
    ch.send(Msg::commit, Encoder().raw(encode_manifest_header(m.header)).hash(m.mac).bytes);
    Frame committed = ch.expect(Msg::committed);
    phase("commit on C");
    if (Decoder(committed.payload, "COMMITTED", ErrorKind::failed).u64() != m.header.generation)
      fail(ErrorKind::failed, "replicate to", o_.target.dest,
           "the helper committed another generation");
    try {
      digest_saved.get();
    } catch (const Error& e) {
      log::warn("{}; the next run will compare every block with the manifest", e.what());
    }
    ts_.record.dest = o_.target.dest;
    ts_.record.uuid = o_.vault.uuid;
    ts_.promote(m);
    res_.generation = m.header.generation;
    res_.time = m.header.time;
    ch.expect(Msg::applied);
    phase("apply on C");
    res_.bytes_sent = ch.bytes_sent();
    res_.bytes_received = ch.bytes_received();
  }

  const ReplicateOptions& o_;
  TargetState& ts_;
  ReplicateResult& res_;
  const std::uint32_t D_;
  Id16 uuid_{};
  Secret mac_key_;
  UniqueFd img_;
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

}  // namespace

void refuse_open_vault(const VaultFacts& vault) {
  if (vault.mounted_at)
    fail(ErrorKind::failed, "replicate", vault.image.native(),
         "the vault is open (mounted at " + vault.mounted_at->native() +
             "); close it first (`coffer vault close`): an open vault changes while it is read");
  if (vault.mapped)
    fail(ErrorKind::failed, "replicate", vault.image.native(),
         "the vault is mapped by device-mapper (left open by an interrupted run?); run `coffer "
         "vault close` first");
}

void refuse_replica_as_source(const std::filesystem::path& image, const TargetSpec& target) {
  Destination d = parse_destination(target.dest);
  if (d.remote) return;  // C's files are out of reach; only a local DEST can be B's own image
  std::error_code ec;
  auto dir = std::filesystem::weakly_canonical(d.dir, ec);
  auto img = std::filesystem::weakly_canonical(image, ec);
  bool inside = false;
  if (!dir.empty() && !img.empty()) {
    auto [end, rest] = std::mismatch(dir.begin(), dir.end(), img.begin(), img.end());
    inside = end == dir.end();
  }
  struct stat a {
  }, b{};
  bool same = ::stat(image.c_str(), &a) == 0 && ::stat((d.dir / "image").c_str(), &b) == 0 &&
              a.st_dev == b.st_dev && a.st_ino == b.st_ino;
  if (inside || same)
    fail(ErrorKind::usage, "replicate", image.native(),
         fmt::format("it is {} the replica {}: replicate B's vault image, not C's copy of it",
                     same ? "the image of" : "inside", d.dir.native()));
}

std::uint32_t check_block_size(std::uint64_t size) {
  if (!config::valid_block_size(size))
    fail(ErrorKind::usage, "set block size", format_size(size), config::kBlockSizeRule);
  return static_cast<std::uint32_t>(size);
}

ReplicateResult replicate(const ReplicateOptions& o) {
  auto t0 = std::chrono::steady_clock::now();
  refuse_open_vault(o.vault);
  refuse_replica_as_source(o.vault.image, o.target);
  if (!o.volume_key && !o.unlock)
    fail(ErrorKind::usage, "replicate", o.vault.image.native(), "no volume key");
  TargetState ts(o.vault.image, o.target.name);
  ts.lock();
  ts.load();
  ReplicateResult res;
  res.target = o.target.name;
  res.dest = o.target.dest;
  auto seconds = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  try {
    Run(o, ts, res).go();
  } catch (const Error& e) {
    try {
      ts.load();
      ts.record.last_run = RunRecord{std::time(nullptr), false,    e.what(), res.bytes_sent,
                                     res.bytes_changed,  seconds()};
      ts.save_last_run();
    } catch (...) {
    }
    throw;
  }
  res.seconds = seconds();
  ts.record.last_run =
      RunRecord{std::time(nullptr), true, "", res.bytes_sent, res.bytes_changed, res.seconds};
  ts.save_last_run();
  return res;
}

}  // namespace coffer::replicate
