// `coffer restore REPO SNAPSHOT[:PATH] TARGET`: gives a snapshot (or a path in it) back, exactly
// (docs/restore.md). Names and metadata come from the snapshot's catalog, content and xattrs
// from its tree; everything in TARGET is reached through openat2(RESOLVE_BENEATH |
// RESOLVE_NO_SYMLINKS), so neither the catalog nor what TARGET already holds can make it write
// outside TARGET. Files are written under a temporary name and renamed into place.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <memory>

#include "coffer/snapshot/layout.hpp"

namespace coffer::restore {

class TreeSource;

// "SNAPSHOT[:PATH]" -> {SNAPSHOT, PATH}. Snapshot names never contain ':'.
std::pair<std::string, std::string> split_snapshot_arg(std::string_view arg);

// The snapshot `spec` names in `repo`: "latest", a snapshot's name (its UTC time), or
// "NAME/latest" / "NAME/TIME" where REPO holds several sources; `name` (--name) selects the
// source too. Without either, a time is looked up in every source and "latest" needs REPO to
// hold exactly one. Errors name REPO and say which sources there are.
snapshot::SnapshotInfo resolve_snapshot(const std::filesystem::path& repo, std::string_view spec,
                                        std::string_view name);

// "a/b/" -> "a/b", "/" and "." -> "" (the root). Throws a usage error for ".." components.
std::string normalize_snapshot_path(std::string_view path);

enum class Overwrite {
  refuse,      // default: TARGET must be empty or missing
  never,       // keep every entry TARGET already has
  if_changed,  // replace entries whose type, size, mtime, mode, owner, xattrs or target differ
  always,      // replace every entry
};

enum class Action { restored, unchanged, updated, skipped, deleted };
const char* action_name(Action a);

struct RestoreRequest {
  std::filesystem::path repo;
  std::shared_ptr<TreeSource> source;  // where the snapshot is read; null: the repository REPO
  std::string snapshot;                // spec for resolve_snapshot
  std::string name;                    // --name
  std::string path;                    // inside the snapshot; "" is its root
  std::filesystem::path target;
  std::vector<std::string> filter_rules;  // "- PATTERN" / "+ PATTERN", first match wins
  bool dry_run = false;
  Overwrite overwrite = Overwrite::refuse;
  bool remove_extra = false;  // --delete
  bool verify = false;
};

struct RestoreResult {
  std::string host, snapshot;
  std::uint64_t entries = 0;  // selected catalog entries
  std::uint64_t restored = 0, unchanged = 0, updated = 0, skipped = 0, deleted = 0;
  std::uint64_t bytes = 0;          // content bytes written (holes not counted)
  std::uint64_t verified = 0;       // files re-read and matched with the catalog
  std::uint64_t chown_skipped = 0;  // entries whose owner could not be set (not root)
  std::uint64_t warnings = 0;       // entries not restored (devices without privileges, ...)
};

// `path` is relative to TARGET, raw bytes ("" is TARGET itself).
using ActionFn = std::function<void(Action, std::string_view path)>;
using WarningFn = std::function<void(std::string_view path, std::string_view message)>;
// Called now and then while files are written: entries done of all selected, bytes written.
using ProgressFn =
    std::function<void(std::uint64_t done, std::uint64_t total, std::uint64_t bytes)>;

struct RestoreCallbacks {
  ActionFn on_action;
  WarningFn on_warning;
  ProgressFn on_progress;
};

// Errors throw coffer::Error: a catalog that names a path outside the tree, a tree that does not
// match its catalog, or --verify finding other content are integrity errors.
RestoreResult run_restore(const RestoreRequest& request, const RestoreCallbacks& callbacks);

}  // namespace coffer::restore
