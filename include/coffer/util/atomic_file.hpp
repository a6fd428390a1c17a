// Durable replacement of a file: write a temporary beside it, fsync, rename over the target,
// fsync the directory. Until commit() the target is untouched; a destroyed uncommitted
// AtomicFile removes its temporary, so an error or a signal leaves the old file in place.
#pragma once

#include <filesystem>
#include <span>
#include <string_view>

#include "coffer/util/fd.hpp"

namespace coffer {

// `durable`: fsync the file before the rename and the directory after it. `replace_only`: the
// rename alone, so readers see the old or the new contents, never a mix, but a crash may lose
// the update (or, where the file system does not order data before renames, leave the file
// empty): for reports that nothing depends on, where two fsyncs would cost more than the
// report is worth.
enum class Durability { durable, replace_only };

class AtomicFile {
 public:
  AtomicFile(std::filesystem::path target, mode_t mode);
  AtomicFile(AtomicFile&&) = delete;
  ~AtomicFile();

  int fd() const noexcept { return fd_.get(); }
  void write(std::span<const std::byte> data);
  void write(std::string_view text);
  // fsync, rename over the target, fsync the directory (the fsyncs only when durable).
  void commit(Durability durability = Durability::durable);

 private:
  std::filesystem::path target_;
  std::filesystem::path temp_;
  UniqueFd fd_;
  bool committed_ = false;
};

// One-shot form of AtomicFile.
void write_file_atomic(const std::filesystem::path& target, std::string_view contents,
                       mode_t mode = 0644, Durability durability = Durability::durable);

}  // namespace coffer
