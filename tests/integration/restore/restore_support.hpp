// Shared steps of the restore tests: a backup made by the real binary, rsync's view of two trees.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "coffer/util/process.hpp"

namespace coffer::test {

// `coffer backup SRC REPO --name NAME`; fails the test on a non-zero exit. Returns the snapshot's
// directory name (its time).
std::string backup(const std::filesystem::path& src, const std::filesystem::path& repo,
                   const std::string& name = "h");
// `rsync -aHAXn --checksum --itemize-changes --delete EXPECTED/ ACTUAL/`: what rsync would still
// change (empty when ACTUAL is an exact copy).
std::string rsync_changes(const std::filesystem::path& expected,
                          const std::filesystem::path& actual);
// Entries of a directory (names only), empty when it is empty or missing.
std::vector<std::string> entries_of(const std::filesystem::path& dir);
// The lines of `text` that contain `needle`.
int lines_containing(const std::string& text, const std::string& needle);

}  // namespace coffer::test
