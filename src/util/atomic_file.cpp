#include "coffer/util/atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>
#include <cstdio>

#include "coffer/util/error.hpp"

namespace coffer {

AtomicFile::AtomicFile(std::filesystem::path target, mode_t mode) : target_(std::move(target)) {
  // mkstemp gives a unique name in the target's directory, so the final rename never crosses
  // a file system.
  std::string pattern = target_.native() + ".tmp.XXXXXX";
  int fd = ::mkostemp(pattern.data(), O_CLOEXEC);
  if (fd < 0) throw_errno("create temporary for", target_, errno);
  fd_.reset(fd);
  temp_ = pattern;
  if (::fchmod(fd, mode) != 0) {
    int err = errno;
    ::unlink(temp_.c_str());
    throw_errno("chmod", temp_, err);
  }
}

AtomicFile::~AtomicFile() {
  if (!committed_ && !temp_.empty()) ::unlink(temp_.c_str());
}

void AtomicFile::write(std::span<const std::byte> data) {
  write_all(fd_.get(), data, temp_);
}

void AtomicFile::write(std::string_view text) {
  write_all(fd_.get(), text, temp_);
}

void AtomicFile::commit(Durability durability) {
  const bool durable = durability == Durability::durable;
  if (durable) fsync_fd(fd_.get(), temp_);
  if (::close(fd_.release()) != 0) throw_errno("close", temp_, errno);
  if (::rename(temp_.c_str(), target_.c_str()) != 0)
    throw_errno("rename into place", target_, errno);
  committed_ = true;
  if (durable) fsync_dir(target_.parent_path());
}

void write_file_atomic(const std::filesystem::path& target, std::string_view contents, mode_t mode,
                       Durability durability) {
  AtomicFile file(target, mode);
  file.write(contents);
  file.commit(durability);
}

}  // namespace coffer
