// `coffer ls`, `find` and `diff`: answers from the snapshots' catalogs, without walking or
// reading the trees (docs/restore.md).
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "coffer/snapshot/catalog.hpp"
#include "coffer/snapshot/layout.hpp"

namespace coffer::restore {

// The entries below `path` ("" is the root): its children, or everything under it with
// `recursive`; a path that is not a directory lists itself. Throws if the catalog lacks it.
std::vector<const snapshot::CatalogEntry*> list_entries(const snapshot::Catalog& catalog,
                                                        std::string_view path, bool recursive,
                                                        const std::filesystem::path& shown);

struct FindHit {
  snapshot::SnapshotInfo snapshot;
  snapshot::CatalogEntry entry;
};
// Entries of every complete snapshot (of source `name`, or of all) whose path matches `pattern`
// in the backup's pattern syntax (a pattern without '/' matches the last component), oldest
// snapshot first.
std::vector<FindHit> find_entries(const std::filesystem::path& repo, std::string_view pattern,
                                  std::string_view name);
class TreeSource;
std::vector<FindHit> find_entries(const TreeSource& source, std::string_view pattern,
                                  std::string_view name);

enum class Change { added, removed, content, metadata };
const char* change_name(Change c);

struct DiffEntry {
  Change change;
  std::string path;
  std::vector<std::string> fields;  // what differs: "type", "size", "content", "mode", ...
};
// What changed from `before` to `after`, in the order of the paths.
std::vector<DiffEntry> diff_catalogs(const snapshot::Catalog& before,
                                     const snapshot::Catalog& after);

}  // namespace coffer::restore
