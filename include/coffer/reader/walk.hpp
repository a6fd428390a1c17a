// Walking a directory of the file system inside a closed vault image (docs/reader.md). Which
// snapshot a name means and restoring from it are restore's (coffer/restore/source.hpp), the
// same code as for a repository.
#pragma once

#include <functional>
#include <string>

#include "coffer/reader/fs.hpp"

namespace coffer::reader {

// Calls `visit(relative path, stat)` for `path` and, when `recursive` or for the entries of
// a directory `path`, for what is below it (depth first, in directory order).
void walk(const FileSystem& fs, const std::string& path, bool recursive,
          const std::function<void(const std::string&, const Stat&)>& visit);

}  // namespace coffer::reader
