// reader::FileSystem: ext4 read with libext2fs through image_io_manager (docs/reader.md).
extern "C" {  // com_err.h declares no C linkage of its own
#include <et/com_err.h>
}
#include <ext2fs/ext2fs.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <cstring>

#include "coffer/reader/fs.hpp"
#include "coffer/util/error.hpp"
#include "io_manager.hpp"

namespace coffer::reader {
namespace {

[[noreturn]] void raise(std::string_view op, const std::string& subject, errcode_t rc,
                        ErrorKind kind = ErrorKind::failed) {
  rethrow_read_error();
  fail(kind, op, subject, error_message(rc));
}

// The *_extra fields hold 2 epoch bits and 30 bits of nanoseconds; they exist when
// i_extra_isize reaches them (offsets from byte 128 of the large inode).
timespec decode_time(std::uint32_t secs, std::uint32_t extra, bool has_extra) {
  timespec t{};
  t.tv_sec = static_cast<std::int32_t>(secs);
  if (has_extra) {
    t.tv_sec += static_cast<std::int64_t>(extra & 3) << 32;
    t.tv_nsec = extra >> 2;
  }
  return t;
}

class ExtentHandle {
 public:
  ExtentHandle(ext2_filsys fs, ext2_ino_t ino, ext2_inode* inode) {
    errcode_t rc = ext2fs_extent_open2(fs, ino, inode, &h_);
    if (rc) raise("read extents of inode", std::to_string(ino), rc);
  }
  ExtentHandle(const ExtentHandle&) = delete;
  ~ExtentHandle() { ext2fs_extent_free(h_); }
  ext2_extent_handle_t get() const { return h_; }

 private:
  ext2_extent_handle_t h_ = nullptr;
};

class FileHandle {
 public:
  FileHandle(ext2_filsys fs, ext2_ino_t ino) {
    errcode_t rc = ext2fs_file_open(fs, ino, 0, &f_);
    if (rc) raise("open inode", std::to_string(ino), rc);
  }
  FileHandle(const FileHandle&) = delete;
  ~FileHandle() { ext2fs_file_close(f_); }
  ext2_file_t get() const { return f_; }

 private:
  ext2_file_t f_ = nullptr;
};

}  // namespace

struct FileSystem::Impl {
  std::shared_ptr<const Image> image;
  ImageRegistration registration;
  ext2_filsys fs = nullptr;

  explicit Impl(std::shared_ptr<const Image> img) : image(std::move(img)), registration(*image) {}
  ~Impl() {
    if (fs) ext2fs_close_free(&fs);
  }

  ext2_inode_large inode(std::uint32_t ino) const {
    ext2_inode_large in{};
    errcode_t rc = ext2fs_read_inode_full(fs, ino, reinterpret_cast<ext2_inode*>(&in), sizeof in);
    if (rc) raise("read inode", std::to_string(ino) + " of " + image->path().native(), rc);
    return in;
  }
};

FileSystem::FileSystem(std::shared_ptr<const Image> image)
    : impl_(std::make_unique<Impl>(std::move(image))) {
  initialize_ext2_error_table();
  const std::string shown = impl_->image->path().native();
  // Read-only open (no EXT2_FLAG_RW): libext2fs refuses unknown incompat features itself.
  errcode_t rc = ext2fs_open2(impl_->registration.name().c_str(), nullptr, EXT2_FLAG_64BITS, 0, 0,
                              image_io_manager(), &impl_->fs);
  if (rc == EXT2_ET_UNSUPP_FEATURE || rc == EXT2_ET_UNIMPLEMENTED)
    fail(ErrorKind::failed, "read", shown,
         std::string("the ext4 file system has features this reader does not support (") +
             error_message(rc) +
             "); it never guesses: open the vault with `coffer vault open` and restore from its "
             "mount");
  if (rc) raise("open the ext4 file system in", shown, rc);
  if (impl_->fs->super->s_feature_incompat & EXT3_FEATURE_INCOMPAT_RECOVER)
    fail(ErrorKind::failed, "read", shown,
         "the file system needs journal recovery (the vault was not closed cleanly); open and "
         "close it once with `coffer vault open` / `coffer vault close`, then retry");
}

FileSystem::~FileSystem() = default;

std::uint32_t FileSystem::lookup(const std::string& path) const {
  ext2_ino_t ino = EXT2_ROOT_INO;
  std::size_t at = 0;
  while (at <= path.size()) {
    std::size_t slash = path.find('/', at);
    if (slash == std::string::npos) slash = path.size();
    std::string name = path.substr(at, slash - at);
    at = slash + 1;
    if (name.empty() || name == ".") continue;
    if (name == "..") fail(ErrorKind::usage, "look up", path, "'..' is not allowed");
    // Descending only through real directories: a symlink in the middle is not followed.
    if (!S_ISDIR(stat(ino).mode)) fail(ErrorKind::missing, "look up", path, "not a directory");
    ext2_ino_t next = 0;
    errcode_t rc =
        ext2fs_lookup(impl_->fs, ino, name.data(), static_cast<int>(name.size()), nullptr, &next);
    if (rc == EXT2_ET_FILE_NOT_FOUND)
      fail(ErrorKind::missing, "look up", path, "no such file or directory");
    if (rc) raise("look up", path, rc);
    ino = next;
  }
  return ino;
}

bool FileSystem::exists(const std::string& path) const {
  try {
    lookup(path);
    return true;
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::missing) return false;
    throw;
  }
}

Stat FileSystem::stat(std::uint32_t ino) const {
  ext2_inode_large in = impl_->inode(ino);
  bool large = EXT2_INODE_SIZE(impl_->fs->super) > EXT2_GOOD_OLD_INODE_SIZE;
  unsigned extra = large ? in.i_extra_isize : 0;
  Stat s;
  s.ino = ino;
  s.mode = in.i_mode;
  s.uid = inode_uid(in);
  s.gid = inode_gid(in);
  s.size = EXT2_I_SIZE(&in);
  s.nlink = in.i_links_count;
  s.ctime = decode_time(in.i_ctime, in.i_ctime_extra, extra >= 8);
  s.mtime = decode_time(in.i_mtime, in.i_mtime_extra, extra >= 12);
  s.atime = decode_time(in.i_atime, in.i_atime_extra, extra >= 16);
  if (S_ISCHR(s.mode) || S_ISBLK(s.mode)) {
    // Old encoding in i_block[0], new (large numbers) in i_block[1], as the kernel does.
    std::uint32_t old = in.i_block[0], nw = in.i_block[1];
    if (old)
      s.rdev = makedev((old >> 8) & 255, old & 255);
    else
      s.rdev = makedev((nw & 0xfff00) >> 8, (nw & 0xff) | ((nw >> 12) & 0xfff00));
  }
  return s;
}

std::vector<DirEntry> FileSystem::list(std::uint32_t dir) const {
  std::vector<DirEntry> out;
  auto cb = [](ext2_ino_t, int, ext2_dir_entry* d, int, int, char*, void* priv) -> int {
    auto* v = static_cast<std::vector<DirEntry>*>(priv);
    std::string name(d->name, static_cast<std::size_t>(ext2fs_dirent_name_len(d)));
    if (d->inode != 0 && name != "." && name != "..") v->push_back({std::move(name), d->inode});
    return 0;
  };
  errcode_t rc = ext2fs_dir_iterate2(impl_->fs, dir, 0, nullptr, cb, &out);
  if (rc) raise("list directory inode", std::to_string(dir), rc);
  return out;
}

std::string FileSystem::readlink(std::uint32_t ino) const {
  ext2_inode_large in = impl_->inode(ino);
  if (!LINUX_S_ISLNK(in.i_mode))
    fail(ErrorKind::failed, "read link", std::to_string(ino), "not a symlink");
  std::uint64_t size = EXT2_I_SIZE(&in);
  if (ext2fs_is_fast_symlink(reinterpret_cast<ext2_inode*>(&in)))
    return std::string(reinterpret_cast<const char*>(in.i_block), size);
  std::string target(size, '\0');
  std::size_t got = read(ino, 0, {reinterpret_cast<std::byte*>(target.data()), target.size()});
  target.resize(got);
  return target;
}

std::size_t FileSystem::read(std::uint32_t ino, std::uint64_t offset,
                             std::span<std::byte> out) const {
  FileHandle f(impl_->fs, ino);
  errcode_t rc = ext2fs_file_llseek(f.get(), offset, EXT2_SEEK_SET, nullptr);
  if (rc) raise("seek in inode", std::to_string(ino), rc);
  std::size_t done = 0;
  while (done < out.size()) {
    unsigned int got = 0;
    auto want = static_cast<unsigned int>(std::min<std::size_t>(out.size() - done, 1u << 30));
    rc = ext2fs_file_read(f.get(), out.data() + done, want, &got);
    if (rc) raise("read inode", std::to_string(ino), rc);
    if (got == 0) break;
    done += got;
  }
  return done;
}

std::vector<Extent> FileSystem::extents(std::uint32_t ino) const {
  ext2_inode_large in = impl_->inode(ino);
  std::uint64_t size = EXT2_I_SIZE(&in);
  std::vector<Extent> out;
  if (size == 0) return out;
  // Inline data and block-mapped (ext3-style) files: one run, holes read as zeros.
  if (!(in.i_flags & EXT4_EXTENTS_FL)) return {{0, size}};
  ExtentHandle h(impl_->fs, ino, reinterpret_cast<ext2_inode*>(&in));
  const std::uint64_t bs = impl_->fs->blocksize;
  ext2fs_extent e{};
  for (int op = EXT2_EXTENT_ROOT;; op = EXT2_EXTENT_NEXT) {
    errcode_t rc = ext2fs_extent_get(h.get(), op, &e);
    if (rc == EXT2_ET_EXTENT_NO_NEXT || rc == EXT2_ET_NO_CURRENT_NODE) break;
    if (rc) raise("read extents of inode", std::to_string(ino), rc);
    if (!(e.e_flags & EXT2_EXTENT_FLAGS_LEAF) || (e.e_flags & EXT2_EXTENT_FLAGS_SECOND_VISIT) ||
        (e.e_flags & EXT2_EXTENT_FLAGS_UNINIT))
      continue;
    std::uint64_t start = e.e_lblk * bs;
    if (start >= size) continue;
    std::uint64_t len = std::min<std::uint64_t>(std::uint64_t{e.e_len} * bs, size - start);
    if (!out.empty() && out.back().offset + out.back().length == start)
      out.back().length += len;
    else
      out.push_back({start, len});
  }
  return out;
}

void FileSystem::will_read(std::uint32_t ino) const {
  ext2_inode_large in = impl_->inode(ino);
  if (!(in.i_flags & EXT4_EXTENTS_FL) || EXT2_I_SIZE(&in) == 0) return;
  ExtentHandle h(impl_->fs, ino, reinterpret_cast<ext2_inode*>(&in));
  const std::uint64_t bs = impl_->fs->blocksize;
  const std::uint64_t base = impl_->image->geometry().data_offset;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> runs;  // bytes of the image file
  ext2fs_extent e{};
  for (int op = EXT2_EXTENT_ROOT;; op = EXT2_EXTENT_NEXT) {
    errcode_t rc = ext2fs_extent_get(h.get(), op, &e);
    if (rc == EXT2_ET_EXTENT_NO_NEXT || rc == EXT2_ET_NO_CURRENT_NODE) break;
    if (rc) raise("read extents of inode", std::to_string(ino), rc);
    if (!(e.e_flags & EXT2_EXTENT_FLAGS_LEAF) || (e.e_flags & EXT2_EXTENT_FLAGS_SECOND_VISIT) ||
        (e.e_flags & EXT2_EXTENT_FLAGS_UNINIT))
      continue;
    std::uint64_t at = base + e.e_pblk * bs, len = std::uint64_t{e.e_len} * bs;
    if (!runs.empty() && runs.back().first + runs.back().second == at)
      runs.back().second += len;
    else
      runs.emplace_back(at, len);
  }
  impl_->image->source().will_read(runs);
}

std::vector<std::pair<std::string, std::string>> FileSystem::xattrs(std::uint32_t ino) const {
  std::vector<std::pair<std::string, std::string>> out;
  ext2_xattr_handle* h = nullptr;
  errcode_t rc = ext2fs_xattrs_open(impl_->fs, ino, &h);
  if (rc == EXT2_ET_MISSING_EA_FEATURE) return out;
  if (rc) raise("read xattrs of inode", std::to_string(ino), rc);
  struct Closer {
    ext2_xattr_handle** h;
    ~Closer() { ext2fs_xattrs_close(h); }
  } closer{&h};
  rc = ext2fs_xattrs_read(h);
  if (rc) raise("read xattrs of inode", std::to_string(ino), rc);
  auto cb = [](char* name, char* value, size_t len, void* priv) -> int {
    static_cast<std::vector<std::pair<std::string, std::string>>*>(priv)->emplace_back(
        name, std::string(value, len));
    return 0;
  };
  rc = ext2fs_xattrs_iterate(h, cb, &out);
  if (rc) raise("read xattrs of inode", std::to_string(ino), rc);
  return out;
}

}  // namespace coffer::reader
