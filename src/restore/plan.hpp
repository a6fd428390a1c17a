// What a restore writes: the catalog entries below the requested path that the filter keeps,
// each with its path relative to TARGET and, for a second name of an inode, the first selected
// name to link to. The whole catalog is checked first, so a doctored one is refused before
// anything is written.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "coffer/snapshot/catalog.hpp"
#include "coffer/transfer/filter.hpp"

namespace coffer::restore {

constexpr std::size_t kNoLeader = SIZE_MAX;

struct PlanEntry {
  const snapshot::CatalogEntry* entry;
  std::string rel;                 // relative to TARGET; "" is TARGET itself
  std::size_t leader = kNoLeader;  // index of the first selected name of the same inode

  std::string_view name() const;    // last component of rel
  std::string_view parent() const;  // "" for top-level entries
};

struct Plan {
  std::vector<PlanEntry> entries;
  std::unordered_set<std::string> rels;  // every rel, for --delete
  std::string prefix;                    // snapshot path of TARGET ("" or "dir/")
  bool root_is_dir = false;              // TARGET itself is the restored directory
};

// Throws an integrity error naming `shown` for a path that is empty, absolute, has "." / ".."
// or an empty component, repeats, or lies below something that is not a directory.
void check_catalog(const snapshot::Catalog& catalog, const std::filesystem::path& shown);

Plan make_plan(const snapshot::Catalog& catalog, std::string_view path,
               const transfer::Filter& filter, const std::filesystem::path& shown);

}  // namespace coffer::restore
