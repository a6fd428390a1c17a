// Durable replacement of a file: write a temporary beside it, fsync, rename over the target,
// fsync the directory. Until commit() the target is untouched; a destroyed uncommitted
// AtomicFile removes its temporary, so an error or a signal leaves the old file in place.
#pragma once

#include <filesystem>
#include <span>
#include <string_view>

#include "coffer/util/fd.hpp"

namespace coffer {

class AtomicFile {
 public:
  AtomicFile(std::filesystem::path target, mode_t mode);
  AtomicFile(AtomicFile&&) = delete;
  ~AtomicFile();

  int fd() const noexcept { return fd_.get(); }
  void write(std::span<const std::byte> data);
  void write(std::string_view text);
  // fsync, rename over the target, fsync the directory.
  void commit();

 private:
  std::filesystem::path target_;
  std::filesystem::path temp_;
  UniqueFd fd_;
  bool committed_ = false;
};

// One-shot form of AtomicFile.
void write_file_atomic(const std::filesystem::path& target, std::string_view contents,
                       mode_t mode = 0644);

}  // namespace coffer
