#include "tree_writer.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <cerrno>

#include <algorithm>
#include <span>
#include <vector>

#include "coffer/util/error.hpp"
#include "coffer/util/fd.hpp"
#include "coffer/util/signals.hpp"
#include "open_beneath.hpp"

namespace coffer::transfer {
namespace fs = std::filesystem;

namespace {
constexpr int kDirFlags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW;

UniqueFd open_root(const fs::path& p) {
  return open_fd(p, kDirFlags);
}

std::string staging_name(std::uint32_t id) {
  return std::to_string(id);
}
}  // namespace

TreeWriter::TreeWriter(const fs::path& tree, const fs::path& staging,
                       const std::optional<fs::path>& prev, const std::optional<fs::path>& resume)
    : tree_path_(tree), tree_(open_root(tree)), staging_(open_root(staging)) {
  if (prev) prev_ = open_root(*prev);
  if (resume) resume_ = open_root(*resume);
}

DirFds& TreeWriter::dir(std::string_view dir) {
  for (auto& c : cache_)
    if (c.tree && c.path == dir) return c;
  DirFds& slot = cache_[next_slot_];
  next_slot_ = (next_slot_ + 1) % cache_.size();
  slot.path = dir;
  int fd = open_beneath(tree_.get(), slot.path, kDirFlags);
  if (fd < 0) throw_errno("open directory", shown(dir), -fd);
  slot.tree.reset(fd);
  slot.prev.reset(prev_ ? std::max(-1, open_beneath(prev_.get(), slot.path, kDirFlags)) : -1);
  slot.resume.reset(resume_ ? std::max(-1, open_beneath(resume_.get(), slot.path, kDirFlags)) : -1);
  return slot;
}

void TreeWriter::make_directory(const FileEntry& e) {
  if (e.path.empty()) return;  // the root is the tree itself
  std::string name(e.name());
  if (::mkdirat(dir(e.parent()).tree.get(), name.c_str(), 0700) != 0)
    throw_errno("create directory", shown(e.path), errno);
}

void TreeWriter::make_symlink(const FileEntry& e) {
  DirFds& d = dir(e.parent());
  std::string name(e.name());
  if (::symlinkat(e.link_target.c_str(), d.tree.get(), name.c_str()) != 0)
    throw_errno("create symlink", shown(e.path), errno);
  meta_.apply_at(d.tree.get(), name, e, shown(e.path));
}

bool TreeWriter::make_special(const FileEntry& e, int& err) {
  DirFds& d = dir(e.parent());
  std::string name(e.name());
  if (::mknodat(d.tree.get(), name.c_str(), snapshot::mode_type_bits(e.type) | 0600,
                static_cast<dev_t>(e.rdev)) != 0) {
    err = errno;
    if (err == EPERM) return false;
    throw_errno("create special file", shown(e.path), err);
  }
  meta_.apply_at(d.tree.get(), name, e, shown(e.path));
  return true;
}

void TreeWriter::finish_directory(const FileEntry& e) {
  int fd = open_beneath(tree_.get(), e.path, kDirFlags);
  if (fd < 0) throw_errno("open directory", shown(e.path), -fd);
  UniqueFd dirfd(fd);
  meta_.apply_fd(dirfd.get(), e, shown(e.path));
}

int TreeWriter::link_from(int base_dirfd, const FileEntry& e) {
  if (base_dirfd < 0) return ENOENT;
  std::string name(e.name());
  if (::linkat(base_dirfd, name.c_str(), dir(e.parent()).tree.get(), name.c_str(), 0) != 0)
    return errno;
  return 0;
}

int TreeWriter::link_within(const FileEntry& existing, const FileEntry& e) {
  // Two cache slots may be needed at once: take the fds before the second lookup can evict.
  int from = ::dup(dir(existing.parent()).tree.get());
  if (from < 0) return errno;
  UniqueFd from_fd(from);
  std::string from_name(existing.name()), name(e.name());
  if (::linkat(from_fd.get(), from_name.c_str(), dir(e.parent()).tree.get(), name.c_str(), 0) != 0)
    return errno;
  return 0;
}

int TreeWriter::replace_with_link(const FileEntry& existing, const FileEntry& e) {
  static constexpr const char* kRelink = "relink";  // staging names are otherwise numbers
  int from = ::dup(dir(existing.parent()).tree.get());
  if (from < 0) return errno;
  UniqueFd from_fd(from);
  std::string from_name(existing.name()), name(e.name());
  ::unlinkat(staging_.get(), kRelink, 0);
  if (::linkat(from_fd.get(), from_name.c_str(), staging_.get(), kRelink, 0) != 0) return errno;
  if (::renameat(staging_.get(), kRelink, dir(e.parent()).tree.get(), name.c_str()) != 0) {
    int err = errno;
    ::unlinkat(staging_.get(), kRelink, 0);
    return err;
  }
  return 0;
}

UniqueFd TreeWriter::create_staging(std::uint32_t id) {
  std::string name = staging_name(id);
  ::unlinkat(staging_.get(), name.c_str(), 0);
  int fd = ::openat(staging_.get(), name.c_str(),
                    O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0)
    throw_errno("create staging file", tree_path_.parent_path() / "staging" / name, errno);
  return UniqueFd(fd);
}

void TreeWriter::unlink_staging(std::uint32_t id) noexcept {
  ::unlinkat(staging_.get(), staging_name(id).c_str(), 0);
}

int TreeWriter::can_hold(std::uint32_t id, std::uint64_t size) {
  UniqueFd probe = create_staging(id);
  int err = ::ftruncate(probe.get(), static_cast<off_t>(size)) == 0 ? 0 : errno;
  unlink_staging(id);
  return err;
}

void TreeWriter::commit_staging(std::uint32_t id, int fd, const FileEntry& e) {
  meta_.apply_fd(fd, e, shown(e.path));
  std::string name(e.name());
  if (::renameat2(staging_.get(), staging_name(id).c_str(), dir(e.parent()).tree.get(),
                  name.c_str(), RENAME_NOREPLACE) != 0)
    throw_errno("move into place", shown(e.path), errno);
}

int open_in(int dirfd, const FileEntry& e) {
  if (dirfd < 0) return -ENOENT;
  std::string name(e.name());
  int fd = ::openat(dirfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  return fd < 0 ? -errno : fd;
}

// One pread/pwrite step of at most `len` bytes at the offsets, which it advances. Returns the
// bytes copied (0 at the end of `in`), or -1 with errno set.
ssize_t copy_buffered(int in, off_t& in_off, int out, off_t& out_off, std::size_t len,
                      std::vector<std::byte>& buffer, const fs::path& shown) {
  if (buffer.empty()) buffer.resize(std::size_t{1} << 20);
  std::size_t want = std::min(len, buffer.size());
  ssize_t n = ::pread(in, buffer.data(), want, in_off);
  if (n <= 0) return n;
  pwrite_all(out, std::span<const std::byte>(buffer.data(), static_cast<std::size_t>(n)), out_off,
             shown);
  in_off += n;
  out_off += n;
  return n;
}

std::uint64_t copy_sparse(int in, int out, std::uint64_t size, const fs::path& shown) {
  std::uint64_t copied = 0;
  bool use_copy_range = true;
  std::vector<std::byte> buffer;
  off_t pos = 0;
  for (;;) {
    off_t data = ::lseek(in, pos, SEEK_DATA);
    if (data < 0) {
      if (errno == ENXIO) break;
      throw_errno("seek data in", shown, errno);
    }
    off_t hole = ::lseek(in, data, SEEK_HOLE);
    if (hole < 0) throw_errno("seek hole in", shown, errno);
    off_t in_off = data, out_off = data;
    while (in_off < hole) {
      check_interrupted("copying a file");
      // At most 64 MiB per call, so that a signal is seen between calls.
      auto len = static_cast<std::size_t>(std::min<off_t>(hole - in_off, off_t{64} << 20));
      ssize_t n = use_copy_range ? ::copy_file_range(in, &in_off, out, &out_off, len, 0)
                                 : copy_buffered(in, in_off, out, out_off, len, buffer, shown);
      if (n < 0) {
        if (errno == EINTR) continue;
        // Across file systems (a restore from the vault to another disk) or where the kernel
        // or file system lacks it, copy_file_range refuses: copy through a buffer instead.
        if (errno == EXDEV || errno == EOPNOTSUPP || errno == ENOSYS || errno == EINVAL) {
          use_copy_range = false;
          continue;
        }
        throw_errno("copy", shown, errno);
      }
      if (n == 0) break;
      copied += static_cast<std::uint64_t>(n);
    }
    pos = hole;
  }
  if (::ftruncate(out, static_cast<off_t>(size)) != 0) throw_errno("set size of", shown, errno);
  return copied;
}

void TreeWriter::copy_into(int src_fd, const FileEntry& e, std::uint32_t id) {
  UniqueFd out = create_staging(id);
  copy_sparse(src_fd, out.get(), e.size, shown(e.path));
  commit_staging(id, out.get(), e);
}

void TreeWriter::make_empty(const FileEntry& e, std::uint32_t id) {
  UniqueFd out = create_staging(id);
  commit_staging(id, out.get(), e);
}

}  // namespace coffer::transfer
