// The sender's walk of the source tree: a pre-order walk, names sorted bytewise in each
// directory, never following a symlink, producing the entries of the file list.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "entry.hpp"
#include "filter.hpp"

namespace coffer::transfer {

struct WalkOptions {
  Filter filter;
  bool one_file_system = false;
};

// What the sender keeps to check, when it reads a file, that it is still the file it listed.
struct SourceIdentity {
  dev_t dev = 0;
  ino_t ino = 0;
};

class Walker {
 public:
  using EntrySink = std::function<void(FileEntry&&, const SourceIdentity&)>;
  using WarningSink = std::function<void(std::string_view path, std::string_view message)>;

  Walker(std::filesystem::path root, const WalkOptions& options, EntrySink on_entry,
         WarningSink on_warning);
  // Opens the root first: a missing, unreadable or empty root throws before any entry is
  // produced, so no snapshot is ever made of it. A walk that lists nothing but the root (every
  // entry excluded) throws at its end.
  void run();
  std::uint64_t entries() const { return next_index_; }

 private:
  void walk_dir(int dirfd, const std::string& dir_path, std::vector<std::string> names);
  std::vector<std::string> read_names(int dirfd, const std::string& shown, bool root);
  void emit(FileEntry&& e, const struct ::stat& st);

  std::filesystem::path root_;
  const WalkOptions& options_;
  EntrySink on_entry_;
  WarningSink on_warning_;
  dev_t root_dev_ = 0;
  std::uint32_t next_index_ = 0;
  std::unordered_map<std::uint64_t, std::uint32_t> inode_leaders_;  // for st_nlink > 1
};

}  // namespace coffer::transfer
