// Source trees for the backup tests, made with real system calls: every file type, odd names,
// owners, modes, xattrs and ACLs, sparse files, hard links, nanosecond times.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "coffer/util/process.hpp"

namespace coffer::test {

// Everything the backup must keep. Needs root (owners, devices, trusted.* xattrs).
void make_fidelity_tree(const std::filesystem::path& root);
// `count` files of `size` random bytes spread over a few directories; returns total bytes.
std::uint64_t make_bulk_tree(const std::filesystem::path& root, int count, std::size_t size,
                             unsigned seed);
void write_random(const std::filesystem::path& p, std::size_t size, unsigned seed);

// The {"type":"backup"} object of a `coffer --json backup` run (empty if absent).
nlohmann::json backup_json(const RunResult& r);
// hosts/<host>/latest/tree of `repo`.
std::filesystem::path latest_tree(const std::filesystem::path& repo, const std::string& host);
std::filesystem::path previous_tree(const std::filesystem::path& repo, const std::string& host);
// Regular files below `root` (relative paths).
std::vector<std::string> regular_files(const std::filesystem::path& root);
int count_regular(const std::filesystem::path& root);
// One line per difference, for failure messages.
std::string join_lines(const std::vector<std::string>& lines);

}  // namespace coffer::test
