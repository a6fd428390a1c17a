// Where snapshots live inside a repository (the mounted vault) and how one becomes complete.
//
//   REPO/hosts/<name>/<UTC timestamp>/tree/       the copy of the source root
//                                    /catalog     one line per entry (docs/formats/catalog.md)
//                                    /complete    the marker, written last (JSON)
//   REPO/hosts/<name>/latest -> <timestamp>       the newest complete snapshot
//   REPO/hosts/<name>/.in-progress/               the snapshot being written; resumed next run
//   REPO/hosts/<name>/.lock                       held by the run writing this host
//
// A directory without its `complete` marker is never listed, never a link base. See
// docs/snapshots.md for the life of a snapshot and what a crash at each step leaves behind.
#pragma once

#include <cstdint>
#include <ctime>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "coffer/util/fd.hpp"
#include "coffer/util/lock.hpp"

namespace coffer::snapshot {

// "2026-11-26T05-37-42Z": sorts like the time it names and is a valid name on every file system.
std::string format_timestamp(std::time_t t);
std::optional<std::time_t> parse_timestamp(std::string_view name);
// Host names become directory names: [A-Za-z0-9._-], not starting with '.', at most 64 bytes.
bool valid_host_name(std::string_view name);

// What the `complete` marker records.
struct Marker {
  std::string host;
  std::string name;          // the timestamp directory name
  std::string source;        // "host:/path" or "/path" as the user gave it
  std::int64_t started = 0;  // unix seconds
  std::int64_t finished = 0;
  std::uint64_t entries = 0;   // catalog lines
  std::uint64_t bytes = 0;     // sum of regular file sizes
  std::uint64_t warnings = 0;  // files that changed or vanished while read, unreadable dirs
};
std::string marker_to_json(const Marker& m);
Marker marker_from_json(std::string_view text, const std::filesystem::path& shown);

struct SnapshotInfo {
  std::string host;
  std::string name;
  std::filesystem::path dir;  // hosts/<host>/<name>
  std::time_t time = 0;       // from the name
  Marker marker;

  std::filesystem::path tree() const { return dir / "tree"; }
  std::filesystem::path catalog() const { return dir / "catalog"; }
};

// Hosts that have a directory under REPO/hosts, sorted.
std::vector<std::string> list_hosts(const std::filesystem::path& repo);
// Complete snapshots of one host, oldest first. A missing host directory is an empty list.
std::vector<SnapshotInfo> list_complete(const std::filesystem::path& repo, std::string_view host);
std::optional<SnapshotInfo> latest_complete(const std::filesystem::path& repo,
                                            std::string_view host);

// The snapshot being written. Construction takes the host lock, publishes a finished in-progress
// directory left by a crash between its marker and its rename, and otherwise resumes it: the
// tree a previous attempt left becomes `resume-base/`, from which unchanged files are linked
// instead of being sent again. The destructor leaves everything in place for the next run.
class InProgress {
 public:
  InProgress(const std::filesystem::path& repo, std::string host, std::string source);
  InProgress(const InProgress&) = delete;

  const std::string& host() const { return host_; }
  const std::filesystem::path& dir() const { return dir_; }           // .in-progress
  std::filesystem::path tree() const { return dir_ / "tree"; }        // created empty
  std::filesystem::path staging() const { return dir_ / "staging"; }  // temporaries
  std::filesystem::path catalog() const { return dir_ / "catalog"; }
  // The partial tree of an interrupted attempt, if any.
  std::optional<std::filesystem::path> resume_base() const;
  bool resumed() const { return resumed_; }
  std::time_t started() const { return started_; }

  // Makes the snapshot complete: syncfs() on the repository's file system (one flush instead of
  // one fsync per file), the marker written durably, the directory renamed to its timestamp,
  // `latest` moved. The catalog must already be written. Returns the published snapshot.
  SnapshotInfo publish(Marker marker);

 private:
  std::filesystem::path repo_;
  std::string host_;
  std::filesystem::path host_dir_;
  std::filesystem::path dir_;
  FileLock lock_;
  bool resumed_ = false;
  std::time_t started_ = 0;
};

// Flushes the whole file system holding `path` (syncfs(2)).
void sync_filesystem(const std::filesystem::path& path);
// Removes a tree without following symlinks; errors name the entry.
void remove_tree(const std::filesystem::path& path);

}  // namespace coffer::snapshot
