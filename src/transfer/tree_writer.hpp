// B's side of the filesystem: creating entries inside the in-progress tree (never outside it:
// every open is relative to a directory fd and refuses symlinks), linking from the previous
// snapshot or an interrupted attempt, local copies, and staging files renamed into place.
#pragma once

#include <array>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "coffer/util/fd.hpp"
#include "entry.hpp"
#include "metadata.hpp"

namespace coffer::transfer {

// Directory fds of the same relative directory in the new tree and its link bases, cached for
// the few directories a pre-order list touches at a time.
struct DirFds {
  std::string path;
  UniqueFd tree, prev, resume;
};

class TreeWriter {
 public:
  // `prev` and `resume` may be empty: no previous snapshot / nothing to resume.
  TreeWriter(const std::filesystem::path& tree, const std::filesystem::path& staging,
             const std::optional<std::filesystem::path>& prev,
             const std::optional<std::filesystem::path>& resume);

  const std::filesystem::path& tree_path() const { return tree_path_; }
  int tree_fd() const { return tree_.get(); }
  int prev_fd() const { return prev_.get(); }
  int resume_fd() const { return resume_.get(); }
  int staging_fd() const { return staging_.get(); }
  MetadataApplier& metadata() { return meta_; }

  // The fds of directory `dir` ("" is the root). Throws if the new tree lacks it.
  DirFds& dir(std::string_view dir);
  std::filesystem::path shown(std::string_view path) const {
    return tree_path_ / std::string(path);
  }

  // Creates a directory (mode 0700 until finish_directory), symlink or special file.
  void make_directory(const FileEntry& e);
  void make_symlink(const FileEntry& e);
  // Returns false (with errno kept) when the kernel refused, e.g. a device without privileges.
  bool make_special(const FileEntry& e, int& err);
  // Final metadata of a directory, after everything inside it is written.
  void finish_directory(const FileEntry& e);

  // Hard link `base_dirfd/name` to the same name in the new tree. Returns 0 or errno.
  int link_from(int base_dirfd, const FileEntry& e);
  // Hard link a second name of an inode already in the new tree. Returns 0 or errno.
  int link_within(const FileEntry& existing, const FileEntry& e);

  // Replaces the name of `e` by a hard link to `existing` (atomically: a link in the staging
  // directory renamed over it). Returns 0 or errno.
  int replace_with_link(const FileEntry& existing, const FileEntry& e);

  // A temporary file in the staging directory for entry `id`.
  UniqueFd create_staging(std::uint32_t id);
  void unlink_staging(std::uint32_t id) noexcept;
  // Whether B's file system can hold a file of `size` bytes (a staging file is set to that size
  // and removed): 0, or the errno (EFBIG).
  int can_hold(std::uint32_t id, std::uint64_t size);
  // Applies metadata to the staged file and renames it to its place in the tree.
  void commit_staging(std::uint32_t id, int fd, const FileEntry& e);
  // Copies `src_fd` (holes kept) into a staging file, applies metadata, renames into place.
  void copy_into(int src_fd, const FileEntry& e, std::uint32_t id);
  // An empty regular file.
  void make_empty(const FileEntry& e, std::uint32_t id);

 private:
  std::filesystem::path tree_path_;
  UniqueFd tree_, staging_, prev_, resume_;
  std::array<DirFds, 8> cache_;
  std::size_t next_slot_ = 0;
  MetadataApplier meta_;
};

// Opens entry `e` by its name in `dirfd`, read-only and never following a symlink. Returns the
// fd, or -errno (-ENOENT when `dirfd` is -1: a link base without that directory).
int open_in(int dirfd, const FileEntry& e);

// copy_sparse() is declared in coffer/transfer/tree_ops.hpp.

}  // namespace coffer::transfer
