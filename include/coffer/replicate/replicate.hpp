// Block-wise replication of a closed vault image from B to an untrusted C.
//
// B keeps, per target, a digest of its image at the generation last committed there
// (IMAGE.coffer/targets/<name>/); a run reads the image once, uploads the changed blocks into a
// journal on C, commits it atomically and has C apply it in place, and authenticates every
// generation with a manifest MAC'd under a key derived from the LUKS volume key.
// How and why: docs/replication.md; formats: docs/formats/{manifest,journal,replica-protocol}.md.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "coffer/config/config.hpp"
#include "coffer/util/secret.hpp"
#include "coffer/util/ssh.hpp"
#include "coffer/util/stream.hpp"

namespace coffer::replicate {

constexpr std::uint32_t kDefaultBlockSize = 64 * 1024;
// The most hashing threads a run starts (`--threads`; more is a usage error).
constexpr unsigned kMaxThreads = 256;

// What the caller learned about the vault from coffer::vault::status().
struct VaultFacts {
  std::filesystem::path image;
  std::string uuid;
  bool mapped = false;
  std::optional<std::filesystem::path> mounted_at;
};

// Throws (kind failed) naming the mapping or mount point if the vault is open: an open vault
// changes under the reader, and a replica of it would be a mix of two states.
void refuse_open_vault(const VaultFacts& vault);

// One replication target: where, how its blocks are cut, how the helper is started.
struct TargetSpec {
  std::string name;  // names B's state directory
  std::string dest;  // local DIR or [user@]host:DIR
  std::uint32_t block_size = kDefaultBlockSize;
  std::string remote_command;  // program (and options) that starts coffer on C
  SshOptions ssh;
};

// A [[target]] whose name or dest equals `arg`, else an ad-hoc target for DEST `arg` (named
// "dest-<hash of DEST>"). `block_size` overrides the configured one.
TargetSpec resolve_target(std::string_view arg, const std::vector<config::Target>& configured,
                          std::optional<std::uint64_t> block_size);
// A usage error when IMAGE is the image of the local replica DEST names (or lies inside its
// directory): replicating C's copy onto itself would rewrite the file while it is read.
void refuse_replica_as_source(const std::filesystem::path& image, const TargetSpec& target);
// Throws (usage) unless a power of two from 4 KiB to 64 MiB.
std::uint32_t check_block_size(std::uint64_t size);

// B's state directory for `target` of `image`.
std::filesystem::path target_state_dir(const std::filesystem::path& image,
                                       const std::string& target);

struct ReplicateOptions {
  VaultFacts vault;
  TargetSpec target;
  const Secret* volume_key = nullptr;  // the LUKS volume key (coffer::vault::volume_key)
  // Or, instead: a function that returns it, called once, at the latest before C commits. It
  // may wait for a key derivation started earlier, which then overlaps with connecting to C and
  // uploading; its errors (a wrong key) end the run before anything is committed.
  std::function<const Secret&()> unlock;
  // Whether unlock() would return at once. The upload asks as it goes, so that a wrong key
  // stops it when the derivation ends rather than after everything was sent.
  std::function<bool()> unlock_ready;
  std::uint64_t limit_rate = 0;  // bytes per second uploaded; 0: unlimited
  unsigned threads = 0;          // hashing threads; 0: every core
  bool reseed = false;           // C lost its replica: accept that and upload a new one
};

struct ReplicateResult {
  std::string target;
  std::string dest;
  std::uint64_t base_generation = 0;
  std::uint64_t generation = 0;
  std::int64_t time = 0;
  std::uint64_t image_size = 0;
  std::uint32_t block_size = 0;
  std::uint64_t blocks = 0;  // detection blocks in the image
  std::uint64_t blocks_changed = 0;
  std::uint64_t bytes_changed = 0;    // data uploaded (zero runs excluded)
  std::uint64_t bytes_zeroed = 0;     // runs that became zeros, sent without data
  std::uint64_t records_resumed = 0;  // records kept from an interrupted upload
  std::uint64_t bytes_resumed = 0;
  std::uint64_t bytes_sent = 0;  // protocol bytes B wrote to the link
  std::uint64_t bytes_received = 0;
  bool full_compare = false;  // no usable digest: every block was strong-hashed
  std::optional<std::uint64_t> recovered_generation;  // C finished an earlier commit first
  double seconds = 0;
};

ReplicateResult replicate(const ReplicateOptions& options);
// What replicate() would send if C holds what B recorded; reads the image, writes nothing,
// does not contact C, needs no key (for --dry-run).
ReplicateResult preview(const ReplicateOptions& options);

struct GenerationInfo {
  std::uint64_t generation = 0;
  std::int64_t time = 0;
  std::uint64_t image_size = 0;
};

struct StatusReport {
  std::string target, dest;
  std::filesystem::path state_dir;
  bool recorded = false;  // B has committed at least one generation there
  GenerationInfo b_record;
  std::uint32_t block_size = 0;
  std::uint64_t blocks = 0;
  std::string last_result;  // "ok", "failed: <message>", "" (never ran)
  std::int64_t last_run_time = 0;
  std::uint64_t last_bytes_sent = 0;
  std::string last_verify;  // "ok", "failed: ...", ""
  bool replica_present = false;
  std::optional<GenerationInfo> c_manifest;
  std::optional<std::uint64_t> c_image_size;
  bool matches = false;  // C's manifest is the one B recorded
  std::string mismatch;  // why not, when recorded and present
  std::optional<std::uint64_t> recovered_generation;
  std::uint64_t partial_bytes = 0;  // an interrupted upload waiting to be resumed
};

StatusReport replica_status(const VaultFacts& vault, const TargetSpec& target);

struct BadBlock {
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
  std::string reason;
};

struct VerifyReport {
  std::string target, dest;
  std::uint64_t generation = 0;  // the generation C was checked against
  std::int64_t time = 0;
  std::uint64_t blocks_checked = 0;
  std::uint64_t blocks_challenged = 0;  // also proven held by C with a fresh nonce
  std::vector<std::string> problems;    // manifest, size, identity problems
  std::vector<BadBlock> bad_blocks;
  bool ok() const { return problems.empty() && bad_blocks.empty(); }
};

// `volume_key` is needed only when B has no record of the target (the manifest on C is then
// checked by its MAC). Never throws for what it finds: the report lists it.
VerifyReport verify(const VaultFacts& vault, const TargetSpec& target, const Secret* volume_key,
                    unsigned threads = 0);

// C's side: serves one session of B on `stream`, confined to `dir`. Errors are also sent to B.
void serve(const std::filesystem::path& dir, ByteStream& stream);

}  // namespace coffer::replicate
