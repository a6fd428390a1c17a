// C's side of a replica: the one directory `coffer replica-serve DIR` may touch, and the fixed
// names inside it (docs/formats/journal.md, "Files on C"). No name ever comes from the protocol,
// which is what confines the helper to DIR.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "coffer/util/lock.hpp"
#include "journal.hpp"
#include "protocol.hpp"

namespace coffer::replicate {

class ReplicaDir {
 public:
  explicit ReplicaDir(std::filesystem::path dir);

  const std::filesystem::path& dir() const { return dir_; }
  std::filesystem::path image() const { return dir_ / "image"; }
  std::filesystem::path manifest() const { return dir_ / "manifest"; }
  std::filesystem::path journal() const { return dir_ / "journal"; }
  std::filesystem::path partial() const { return dir_ / "journal.partial"; }
  std::filesystem::path marker() const { return dir_ / "coffer-replica"; }

  // What DIR is now; `detail` says what a foreign directory holds. Throws if one of the fixed
  // names is a symbolic link or not a regular file (refuse_links).
  DirKind inspect(std::string& detail) const;
  // An error naming the first fixed name in DIR that is a symbolic link or not a plain file.
  void refuse_links() const;
  // Makes an absent or empty DIR a replica (creates DIR, parents must exist). Locks it.
  void init();
  // Exclusive use of the replica for this helper (flock on DIR/lock, holding our pid).
  void lock();
  // Finishes a committed journal and removes stale temporaries. Returns the generation applied.
  std::optional<std::uint64_t> recover();
  // What B needs to know; also keeps the scanned partial journal for a resumed upload.
  ReplicaState state(std::optional<std::uint64_t> recovered);
  const std::optional<ScannedJournal>& scanned_partial() const { return partial_; }

 private:
  std::filesystem::path dir_;
  std::unique_ptr<FileLock> lock_;
  std::optional<ScannedJournal> partial_;
};

}  // namespace coffer::replicate
