// Snapshots inside a closed vault image, and a minimal restore from them (docs/reader.md).
// Everything is read through reader::FileSystem; nothing is written to the image.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "coffer/reader/fs.hpp"

namespace coffer::reader {

struct SnapshotRef {
  std::string host;
  std::string name;  // the timestamp directory
  std::string tree;  // "hosts/<host>/<name>/tree", a path in the file system
};

// `spec` is "latest", "TIME", "HOST/latest" or "HOST/TIME" (TIME as in docs/snapshots.md).
// Without a host, `host` (--name) or the only host in the image is used. Only snapshots with
// their `complete` marker count. ErrorKind::missing when there is no such snapshot.
SnapshotRef resolve_snapshot(const FileSystem& fs, const std::string& spec,
                             const std::string& host);

// Splits "SNAPSHOT[:PATH]" at the first ':'; PATH is relative to the snapshot's root.
std::pair<std::string, std::string> split_snapshot_arg(const std::string& arg);

// Calls `visit(relative path, stat)` for `path` and, when `recursive` or for the entries of
// a directory `path`, for what is below it (depth first, in directory order).
void walk(const FileSystem& fs, const std::string& path, bool recursive,
          const std::function<void(const std::string&, const Stat&)>& visit);

struct ExtractReport {
  std::uint64_t entries = 0, files = 0, bytes = 0, hard_links = 0;
  std::uint64_t warnings = 0;  // xattrs or device nodes this user may not create
  std::vector<std::string> warning_lines;
};

// Restores `path` of the file system as `target`, which must not exist: written under a
// temporary name beside it, then renamed. Content (holes stay holes), modes, ns times,
// symlinks, hard links within the restored tree, xattrs; owners when running as root.
ExtractReport extract(const FileSystem& fs, const std::string& path,
                      const std::filesystem::path& target);

}  // namespace coffer::reader
