// `coffer replica verify IMAGE DEST`: C hashes its copy (plain, and keyed with a fresh nonce);
// B compares with the manifest it committed and, for blocks its own image still holds unchanged,
// with the keyed hashes it computes itself. Nothing of the image is downloaded.
#include <fcntl.h>
#include <fmt/format.h>
#include <sodium.h>
#include <sys/stat.h>
#include <ctime>
#include <thread>

#include "chunks.hpp"
#include "client.hpp"
#include "coffer/replicate/replicate.hpp"
#include "coffer/util/log.hpp"

namespace coffer::replicate {
namespace {

using Nonce = std::array<std::byte, 32>;

// B's keyed hash of each manifest block that still equals generation N (known from the digest).
struct OwnHashes {
  std::vector<std::optional<Hash128>> keyed;
  std::exception_ptr error;
};

void hash_own_image(const std::filesystem::path& image, const Digest& digest, std::uint64_t size,
                    const Nonce& nonce, unsigned threads, OwnHashes& out) {
  try {
    UniqueFd fd = open_fd(image, O_RDONLY);
    const std::uint32_t D = digest.block_size, M = kManifestBlockSize;
    Geometry g = Geometry::make(size, D, M);
    out.keyed.assign(g.manifest_blocks(), std::nullopt);
    const Hash128 zero_fast = zero_fast_hash(D);
    std::vector<std::byte> zeros(M);
    const Hash128 zero_keyed = keyed_hash(nonce, zeros);
    BufferPool buffers;
    auto work = [&](std::uint64_t index) {
      Chunk c;
      c.data = buffers.take();
      std::uint64_t offset = index * g.chunk, length = std::min(g.chunk, size - offset);
      read_chunk(fd.get(), image, offset, length, g.chunk, std::max(D, M), c);
      std::uint64_t nd = Geometry::blocks(length, D), first_d = offset / D;
      std::vector<char> same(nd);
      const std::uint64_t nm = Geometry::blocks(length, M);
      const std::vector<char> d_data = c.data_map(D, nd), m_data = c.data_map(M, nm);
      for (std::uint64_t k = 0; k < nd; ++k) {
        Hash128 h = d_data[k] ? fast_hash(c.bytes(k * D, D)) : zero_fast;
        same[k] = first_d + k < digest.blocks.size() && digest.blocks[first_d + k] == h;
      }
      for (std::uint64_t j = 0; j < nm; ++j) {
        std::uint64_t b = j * M / D, e = std::min(nd, std::max(b + 1, (j + 1) * M / D));
        bool unchanged = true;
        for (std::uint64_t k = b; k < e; ++k) unchanged = unchanged && same[k];
        if (unchanged)
          out.keyed[offset / M + j] = m_data[j] ? keyed_hash(nonce, c.bytes(j * M, M)) : zero_keyed;
      }
      buffers.give(std::move(c.data));
      return 0;
    };
    unsigned t = hashing_threads(threads);
    run_ordered<int>(g.chunks(), t, t * 2 + 2, work, [](std::uint64_t, int) {});
  } catch (...) {
    out.error = std::current_exception();
  }
}

class Verifier {
 public:
  Verifier(const VaultFacts& v, const TargetSpec& t, const Secret* key, unsigned threads,
           VerifyReport& r)
      : vault_(v), target_(t), key_(key), threads_(threads), r_(r), ts_(v.image, t.name) {}

  void go() {
    bool recorded = ts_.load() && ts_.record.generation > 0;
    if (recorded) ts_.lock();
    ClientSession s(target_);
    ReplicaState st = s.hello();
    const std::string& dest = target_.dest;
    if (st.kind != DirKind::replica)
      fail(ErrorKind::missing, "verify replica at", dest,
           st.kind == DirKind::foreign ? "not a coffer replica: " + st.detail
                                       : "there is no replica there");
    Manifest expected = recorded ? recorded_manifest(s, st) : manifest_by_mac(s, st);
    r_.generation = expected.header.generation;
    r_.time = expected.header.time;
    const std::uint64_t size = expected.header.image_size;
    if (!st.image_size)
      r_.problems.push_back(fmt::format("{} has no image file", dest));
    else if (*st.image_size != size)
      r_.bad_blocks.push_back(
          {std::min(size, *st.image_size),
           size > *st.image_size ? size - *st.image_size : *st.image_size - size,
           size > *st.image_size
               ? fmt::format("image truncated: C's image ends at {}, generation {} is {} bytes",
                             *st.image_size, r_.generation, size)
               : fmt::format("image extended: C's image is {} bytes, generation {} ends at {}",
                             *st.image_size, r_.generation, size)});
    if (!st.image_size) return;

    Nonce nonce;
    randombytes_buf(nonce.data(), nonce.size());
    OwnHashes own;
    std::thread own_thread;
    std::optional<Digest> digest =
        recorded ? ts_.load_digest(r_.generation, ts_.record.detect_block_size) : std::nullopt;
    struct stat bst {};
    bool can_challenge = digest && ::stat(vault_.image.c_str(), &bst) == 0 &&
                         static_cast<std::uint64_t>(bst.st_size) == size;
    if (can_challenge)
      own_thread = std::thread(hash_own_image, vault_.image, std::cref(*digest), size,
                               std::cref(nonce), threads_, std::ref(own));
    struct JoinGuard {
      std::thread& t;
      ~JoinGuard() {
        if (t.joinable()) t.join();
      }
    } guard{own_thread};

    Channel& ch = s.channel();
    ch.send(Msg::verify,
            Encoder().raw(nonce.data(), 32).u32(kManifestBlockSize).u32(threads_).bytes);
    std::vector<Hash256> plain;
    std::vector<Hash128> keyed;
    for (;;) {
      Frame f = *ch.receive();
      Decoder d(f.payload, "verify reply from " + dest, ErrorKind::failed);
      if (f.type == Msg::verify_end) break;
      if (f.type != Msg::verify_hashes) d.malformed("unexpected message");
      std::uint64_t first = d.u64();
      std::uint32_t n = d.u32();
      if (first != plain.size() || d.remaining() != std::size_t{n} * 48)
        d.malformed("bad hash batch");
      for (std::uint32_t i = 0; i < n; ++i) {
        plain.push_back(d.hash256());
        keyed.push_back(d.hash128());
      }
    }
    s.bye();
    if (own_thread.joinable()) own_thread.join();
    if (own.error) {
      try {
        std::rethrow_exception(own.error);
      } catch (const Error& e) {
        log::warn("could not hash B's own image for the challenge: {}", e.what());
        own.keyed.clear();
      }
    }
    compare(expected, plain, keyed, own);
  }

 private:
  Manifest recorded_manifest(ClientSession& s, const ReplicaState& st) {
    Assessment a = assess(ts_, st, target_.dest);
    std::optional<Manifest> m = ts_.load_manifest(ts_.record.generation);
    if (a.standing == Standing::next_pending) {
      m = ts_.load_manifest(st.manifest->generation);
    } else if (a.standing != Standing::matches) {
      r_.problems.push_back(a.explanation);
    }
    if (!m || (a.standing == Standing::matches && m->mac != ts_.record.manifest_mac))
      fail(ErrorKind::failed, "verify replica at", target_.dest,
           "B's copy of manifest " + std::to_string(ts_.record.generation) + " is missing from " +
               ts_.dir().native());
    if (a.standing == Standing::mismatch && st.manifest) {
      // Name the blocks whose manifest entries C changed.
      Manifest theirs = s.fetch_manifest();
      std::uint64_t n = std::min(theirs.entries.size(), m->entries.size());
      std::uint64_t stale = 0;
      for (std::uint64_t i = 0; i < n; ++i)
        if (theirs.entries[i] != m->entries[i]) {
          ++stale;
          manifest_bad_.push_back(i);
        }
      if (stale)
        log::info("{} manifest entries on {} differ from generation {}", stale, target_.dest,
                  m->header.generation);
    }
    return *m;
  }

  Manifest manifest_by_mac(ClientSession& s, const ReplicaState& st) {
    if (!st.manifest)
      fail(ErrorKind::missing, "verify replica at", target_.dest,
           "the replica has no manifest yet");
    if (!key_)
      fail(ErrorKind::usage, "verify replica at", target_.dest,
           "B has no record of this target; give the vault's key so C's manifest can be checked by "
           "its MAC");
    Manifest m = s.fetch_manifest();
    if (!m.mac_valid(derive_mac_key(*key_)))
      r_.problems.push_back(
          fmt::format("the manifest on {} was not made with this vault's key", target_.dest));
    if (format_uuid(m.header.luks_uuid) != vault_.uuid)
      r_.problems.push_back(fmt::format("the replica on {} is of vault {}, not {}", target_.dest,
                                        format_uuid(m.header.luks_uuid), vault_.uuid));
    return m;
  }

  void compare(const Manifest& expected, const std::vector<Hash256>& plain,
               const std::vector<Hash128>& keyed, const OwnHashes& own) {
    const std::uint64_t count = expected.entries.size(), M = kManifestBlockSize;
    const std::uint64_t size = expected.header.image_size;
    std::vector<std::string> reasons(std::max<std::uint64_t>(count, plain.size()));
    for (std::uint64_t i : manifest_bad_)
      reasons[i] = fmt::format("C's manifest entry differs from generation {}", r_.generation);
    for (std::uint64_t i = 0; i < reasons.size(); ++i) {
      std::string why;
      if (i >= plain.size())
        why = "missing: C's image is truncated";
      else if (i >= count)
        why = fmt::format("beyond the end of generation {}: C's image is extended", r_.generation);
      else if (plain[i] != expected.entries[i])
        why = fmt::format("contents differ from generation {}", r_.generation);
      else if (i < own.keyed.size() && own.keyed[i] && *own.keyed[i] != keyed[i])
        why = "C answered the challenge wrongly: it does not hold this block";
      if (i < plain.size() && i < count && why.empty()) {
        ++r_.blocks_checked;
        if (i < own.keyed.size() && own.keyed[i]) ++r_.blocks_challenged;
      }
      if (!why.empty()) reasons[i] = reasons[i].empty() ? why : why + "; " + reasons[i];
      if (!reasons[i].empty()) {
        std::uint64_t end = std::max(size, plain.size() * M);
        r_.bad_blocks.push_back({i * M, std::min(M, end - i * M), reasons[i]});
      }
    }
    std::sort(r_.bad_blocks.begin(), r_.bad_blocks.end(),
              [](const BadBlock& a, const BadBlock& b) { return a.offset < b.offset; });
  }

  const VaultFacts& vault_;
  const TargetSpec& target_;
  const Secret* key_;
  unsigned threads_;
  VerifyReport& r_;
  TargetState ts_;
  std::vector<std::uint64_t> manifest_bad_;
};

}  // namespace

VerifyReport verify(const VaultFacts& vault, const TargetSpec& target, const Secret* volume_key,
                    unsigned threads) {
  VerifyReport r;
  r.target = target.name;
  r.dest = target.dest;
  Verifier(vault, target, volume_key, threads, r).go();
  TargetState ts(vault.image, target.name);
  if (ts.load() && ts.record.generation > 0) {
    std::string msg =
        r.ok() ? ""
               : fmt::format("{} problems, {} bad blocks", r.problems.size(), r.bad_blocks.size());
    ts.record.last_verify = RunRecord{std::time(nullptr), r.ok(), msg, 0, 0, 0};
    ts.save_last_verify();
  }
  return r;
}

}  // namespace coffer::replicate
