// Where restore, ls, find and diff read snapshots from: a mounted repository (a directory on B)
// or the file system inside a closed vault image (reader::FileSystem, over a local image or over
// blocks fetched from a replica on C). The restorer, its plan and its writer are the same for
// both (docs/restore.md, docs/reader.md); only snapshots, catalogs, xattrs and file content
// come from here.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "coffer/snapshot/catalog.hpp"
#include "coffer/snapshot/layout.hpp"
#include "coffer/transfer/tree_ops.hpp"

namespace coffer::reader {
class FileSystem;
}

namespace coffer::restore {

class TreeSource {
 public:
  virtual ~TreeSource() = default;
  // What REPO is called in messages (the directory, or the image / replica).
  virtual const std::string& name() const = 0;
  // Sources that have a directory under hosts/, sorted.
  virtual std::vector<std::string> hosts() const = 0;
  // Complete snapshots of `host`, oldest first (the marker is parsed only for a repository).
  virtual std::vector<snapshot::SnapshotInfo> complete(std::string_view host) const = 0;
  virtual std::filesystem::path catalog_path(const snapshot::SnapshotInfo& s) const = 0;
  virtual snapshot::Catalog catalog(const snapshot::SnapshotInfo& s) const = 0;
  // The snapshot whose tree the calls below read.
  virtual void open_tree(const snapshot::SnapshotInfo& s) = 0;
  // Extended attributes of the tree's entry at `path` ("" is the root), sorted by name.
  virtual transfer::Xattrs xattrs(const std::string& path) = 0;
  // Writes the content of the regular file `e` into `out` (holes stay holes, size set) and
  // returns the data bytes written. A tree entry whose type or size differs from `e` is an
  // integrity error.
  virtual std::uint64_t copy(const snapshot::CatalogEntry& e, int out,
                             const std::filesystem::path& where) = 0;
  // How the tree's entry at `path` of snapshot `s` is named in messages.
  virtual std::filesystem::path shown(const snapshot::SnapshotInfo& s,
                                      std::string_view path) const = 0;
};

// A repository: REPO/hosts/<name>/<time>/{tree,catalog,complete} (docs/snapshots.md).
std::unique_ptr<TreeSource> repository_source(const std::filesystem::path& repo);
// The same layout inside a closed image's file system; `shown` names the image (or replica).
std::unique_ptr<TreeSource> image_source(std::shared_ptr<const reader::FileSystem> fs,
                                         std::string shown);

// The snapshot `spec` names: "latest", a snapshot's name (its UTC time), or "NAME/latest" /
// "NAME/TIME"; `name` (--name) selects the source too. Without either, a time is looked up in
// every source and "latest" needs one source.
snapshot::SnapshotInfo resolve_snapshot(const TreeSource& source, std::string_view spec,
                                        std::string_view name);

}  // namespace coffer::restore
