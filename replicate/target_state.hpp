// B's state for one target, in IMAGE.coffer/targets/<name>/ (docs/replication.md, "State on B"):
//   state.json        the record: last generation committed on C, its manifest MAC, last runs
//   digest.<gen>      fast hashes of the image at that generation (detection blocks)
//   manifest.<gen>    the manifest C should hold (exactly the bytes C stores)
//   history           one line per generation ever committed: generation, time, size, MAC
//   lock              held while a run uses this target
// A run writes digest.<N+1> and manifest.<N+1> before it asks C to commit, and the record only
// after C has committed, so a crash in between is resolved on the next run by asking C.
#pragma once

#include <cstdint>
#include <filesystem>
#include <future>
#include <memory>
#include <optional>
#include <string>

#include "coffer/replicate/manifest.hpp"
#include "coffer/util/lock.hpp"
#include "digest.hpp"

namespace coffer::replicate {

struct RunRecord {
  std::int64_t time = 0;
  bool ok = false;
  std::string message;
  std::uint64_t bytes_sent = 0;
  std::uint64_t bytes_changed = 0;
  double seconds = 0;
};

struct TargetRecord {
  std::string name, dest;
  Id16 replica_id{};
  bool has_replica_id = false;
  std::uint64_t generation = 0;
  std::int64_t time = 0;
  std::uint64_t image_size = 0;
  std::uint32_t detect_block_size = 0;
  std::string uuid;
  Hash256 manifest_mac;
  std::optional<RunRecord> last_run;
  std::optional<RunRecord> last_verify;
};

struct HistoryEntry {
  std::uint64_t generation = 0;
  std::int64_t time = 0;
  std::uint64_t image_size = 0;
  Hash256 mac;
};

class TargetState {
 public:
  TargetState(const std::filesystem::path& image, std::string name);

  const std::filesystem::path& dir() const { return dir_; }
  // Creates the directory (0700) and takes the lock (kind locked if another run has it).
  void lock();
  // Reads state.json if there is one (and the reports beside it); returns whether there was.
  bool load();
  // Durably writes the record of what C holds (state.json), never the reports.
  void save() const;
  // The reports of the last replication and the last verify, for `replica status`: each in its
  // own file (last-run.json, last-verify.json), replaced atomically but not fsynced. Nothing
  // depends on them, and the fsyncs cost a run more than the rest of its bookkeeping (20-27 ms
  // at the end of every W3 run on the benchmark machine, docs/replication.md).
  void save_last_run() const;
  void save_last_verify() const;

  TargetRecord record;

  std::filesystem::path digest_path(std::uint64_t gen) const;
  std::filesystem::path manifest_path(std::uint64_t gen) const;
  std::optional<Digest> load_digest(std::uint64_t gen, std::uint32_t block_size) const;
  std::optional<Manifest> load_manifest(std::uint64_t gen) const;
  // Durably writes the manifest of generation `gen` before C is asked to commit it. Its digest,
  // which only speeds up the next run, is written meanwhile on another thread: the future says
  // how that went.
  std::future<void> write_pending(std::uint64_t gen, Digest digest, const Manifest& manifest) const;
  // C committed `m`: it becomes the record; older generation files go.
  void promote(const Manifest& m);
  std::optional<HistoryEntry> find_in_history(const Hash256& mac) const;
  // Removes digest/manifest files of generations other than `keep` and `keep + 1`.
  void prune(std::uint64_t keep) const;

 private:
  void append_history(const Manifest& m) const;

  std::filesystem::path dir_;
  std::unique_ptr<FileLock> lock_;
};

}  // namespace coffer::replicate
