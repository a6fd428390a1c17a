// Real snapshots made by `coffer backup`, renamed to chosen UTC times, and a catalog-level
// fingerprint of each snapshot to show that removing others left it unchanged.
#pragma once

#include <ctime>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "coffer/util/process.hpp"

namespace coffer::test {

std::time_t utc_time(int y, int mo, int d, int h = 3);

// One backup of `src` into `repo` as hosts/`host`, renamed to the timestamp of `t` (times must
// grow from call to call). `files` new files of unique content are added to `src` first.
std::string make_snapshot(const std::filesystem::path& src, const std::filesystem::path& repo,
                          const std::string& host, std::time_t t, int files);

// Snapshot names present (complete or not) in hosts/`host`, sorted.
std::vector<std::string> snapshot_dirs(const std::filesystem::path& repo, const std::string& host);

// For every catalog entry: what the tree has (type, mode, size, ns mtime, owner, content hash
// of regular files, link target); the catalog text itself too. Link counts are left out: they
// are the one thing removing another snapshot may change.
std::map<std::string, std::string> fingerprint(const std::filesystem::path& snapshot_dir);
// Differences between the tree and its catalog (type, size, mode, mtime, content hash).
std::vector<std::string> tree_vs_catalog(const std::filesystem::path& snapshot_dir);

// The JSON lines of a --json run with "type" == `type`.
std::vector<nlohmann::json> json_lines(const RunResult& r, const std::string& type);

}  // namespace coffer::test
