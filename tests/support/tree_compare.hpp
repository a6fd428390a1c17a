// Compares two directory trees field by field, the way a restore must reproduce a source:
// type, permission bits (setuid/setgid/sticky included), numeric owner, size, nanosecond mtime
// (directories and symlinks too), content (BLAKE2b), symlink target, device numbers, every xattr
// (POSIX ACLs included, they are system.posix_acl_* xattrs), hole layout of sparse files, and
// the hard-link structure (which names share an inode). Names are compared as raw bytes.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace coffer::test {

struct CompareOptions {
  bool owners = true;         // false when the copy was made without root
  bool holes = true;          // data/hole layout of files that are sparse in `expected`
  bool root_metadata = true;  // also compare the two roots' own metadata
};

// Every difference as one line ("a/b: mode 0644 != 0600"); empty when the trees are equal.
std::vector<std::string> compare_trees(const std::filesystem::path& expected,
                                       const std::filesystem::path& actual,
                                       const CompareOptions& options = {});

// Relative paths (raw bytes) of all entries below `root`, sorted.
std::vector<std::string> list_tree(const std::filesystem::path& root);

}  // namespace coffer::test
