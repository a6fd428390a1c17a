// create, open, close, status: the life cycle of a vault. Key management is in keys.cpp,
// growing in grow.cpp.
#include "coffer/vault/vault.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <cerrno>

#include "coffer/util/error.hpp"
#include "coffer/util/fd.hpp"
#include "coffer/util/lock.hpp"
#include "coffer/util/log.hpp"
#include "coffer/util/process.hpp"
#include "coffer/util/signals.hpp"
#include "coffer/util/units.hpp"
#include "loop_devices.hpp"
#include "luks_device.hpp"
#include "mapping_guard.hpp"
#include "mounts.hpp"
#include "runtime_state.hpp"

namespace coffer::vault {
namespace {

constexpr std::uint64_t kMinimumSize = 64ull << 20;  // 16 MiB LUKS2 header + a usable ext4

// Removes a half-made image unless the creation completed.
class RemoveOnFailure {
 public:
  explicit RemoveOnFailure(std::filesystem::path p) : path_(std::move(p)) {}
  ~RemoveOnFailure() {
    if (!done_) ::unlink(path_.c_str());
  }
  void done() { done_ = true; }

 private:
  std::filesystem::path path_;
  bool done_ = false;
};

std::string program(const char* name) {
  if (auto p = find_program(name)) return *p;
  for (const char* dir : {"/usr/sbin/", "/sbin/"})
    if (::access((std::string(dir) + name).c_str(), X_OK) == 0) return std::string(dir) + name;
  return name;
}

void make_filesystem(const std::string& device, const std::filesystem::path& image) {
  // lazy_*_init=0: write inode tables and journal now, so that an idle vault never changes
  // blocks in the background (replication would ship them). nodiscard: no holes punched.
  run_checked({program("mkfs.ext4"), "-q", "-F", "-L", "coffer", "-b", "4096", "-m", "1", "-E",
               "lazy_itable_init=0,lazy_journal_init=0,nodiscard", device},
              "make ext4 in", image.native());
}

std::filesystem::path mapper_path(const std::string& mapping) {
  return "/dev/mapper/" + mapping;
}

void ensure_runtime_dir(const Location& where) {
  std::error_code ec;
  std::filesystem::create_directories(where.runtime_dir, ec);
  if (ec) throw_errno("create runtime directory", where.runtime_dir, ec.value());
}

void require_device_mapper(const std::filesystem::path& image) {
  if (!device_mapper_available())
    fail(
        ErrorKind::failed, "map", image.native(),
        "this kernel has no device-mapper (/dev/mapper/control cannot be opened); run coffer where "
        "dm-crypt is available, e.g. inside User-Mode Linux (see docs/vault.md)");
}

}  // namespace

bool device_mapper_available() {
  // The node alone proves nothing: libdevmapper creates /dev/mapper/control with mknod even on
  // kernels without device-mapper. Opening it does.
  int fd = ::open("/dev/mapper/control", O_RDWR | O_CLOEXEC);
  if (fd < 0) return false;
  ::close(fd);
  return true;
}

std::vector<KeySlot> create(const Location& where, const CreateOptions& options,
                            const config::Credentials& new_keys) {
  if (!new_keys.any())
    fail(ErrorKind::usage, "create vault", where.image.native(),
         "give a key file (--key-file or --generate-key-file) and/or a passphrase");
  if (options.size < kMinimumSize)
    fail(ErrorKind::usage, "create vault", where.image.native(),
         "size " + format_size(options.size) + " is below the minimum of 64 MiB");
  require_device_mapper(where.image);
  ensure_runtime_dir(where);

  UniqueFd fd;
  try {
    fd = open_fd(where.image, O_RDWR | O_CREAT | O_EXCL, 0600);
  } catch (const Error& e) {
    if (e.code().value() == EEXIST)
      fail(ErrorKind::failed, "create vault", where.image.native(),
           "file exists; refusing to overwrite it");
    throw;
  }
  RemoveOnFailure cleanup(where.image);
  // The lock is named by the file's identity, so it can be taken only once the file exists;
  // O_EXCL already keeps a second create of the same path away.
  FileLock lock(where.lock_path());
  if (::ftruncate(fd.get(), static_cast<off_t>(options.size)) != 0)
    throw_errno("set size of", where.image, errno);
  fd.reset();

  LuksDevice dev(where.image);
  dev.format(options.kdf, options.label);
  if (new_keys.key) dev.add_keyslot(*new_keys.key, options.kdf);
  if (new_keys.passphrase) dev.add_keyslot(*new_keys.passphrase, options.kdf);
  check_interrupted("create vault");

  std::string name = where.mapping_name();
  {
    MappingGuard mapping = MappingGuard::activate_with_volume_key(dev, name);
    make_filesystem(mapper_path(name).native(), where.image);
  }
  UniqueFd sync = open_fd(where.image, O_RDONLY);
  fsync_fd(sync.get(), where.image);
  fsync_dir(where.image.parent_path().empty() ? "." : where.image.parent_path());
  cleanup.done();
  log::debug("created vault {} ({}, LUKS2 {}, uuid {})", where.image.native(),
             format_size(options.size), dev.cipher(), dev.uuid());
  return dev.keyslots();
}

std::filesystem::path open(const Location& where, const config::Credentials& creds,
                           const std::optional<std::filesystem::path>& mount) {
  check_image(where.image);
  require_device_mapper(where.image);
  ensure_runtime_dir(where);
  FileLock lock(where.lock_path());

  Observed seen = observe(where);
  if (seen.is_open()) {
    // Through another name (symlink, hard link, ...) it is still the same file.
    std::string as = seen.state->image == real_image_path(where.image)
                         ? std::string()
                         : " as " + seen.state->image.native();
    fail(ErrorKind::failed, "open vault", where.image.native(),
         "already open" + as + ", mounted at " + seen.mounted_at->native());
  }
  if (seen.is_stale()) {
    log::warn("cleaning up after an interrupted run: mapping {}{}", where.mapping_name(),
              seen.mounted_at ? ", mounted at " + seen.mounted_at->native() : std::string());
    tear_down(where, seen);
  }
  refuse_foreign_loop_devices(where.image, "open vault");

  LuksDevice dev(where.image);
  dev.load();
  std::string name = where.mapping_name();
  MappingGuard mapping = MappingGuard::activate(dev, creds, name);
  check_interrupted("open vault");

  std::filesystem::path target = mount.value_or(where.default_mount());
  std::error_code ec;
  std::filesystem::create_directories(target, ec);
  if (ec) throw_errno("create mount point", target, ec.value());
  MountGuard mounted(mapper_path(name), target);
  check_interrupted("open vault");

  std::filesystem::path real = std::filesystem::canonical(target);
  write_open_state(where, {real_image_path(where.image), real, name, ::getpid()});
  mounted.release();
  mapping.release();
  return real;
}

void close(const Location& where) {
  ensure_runtime_dir(where);
  FileLock lock(where.lock_path());
  Observed seen = observe(where);
  if (!seen.mapped && !seen.mounted_at) {
    remove_open_state(where);
    if (!std::filesystem::exists(where.image))
      throw_errno("close vault", where.image, ENOENT, ErrorKind::missing);
    fail(ErrorKind::failed, "close vault", where.image.native(), "it is not open");
  }
  if (seen.is_stale())
    log::warn("vault {} was left mapped by an interrupted run; cleaning up", where.image.native());
  tear_down(where, seen);
}

Status status(const Location& where) {
  Status s;
  s.image = where.image;
  struct stat st {};
  if (::stat(where.image.c_str(), &st) != 0) {
    if (errno == ENOENT) return s;
    throw_errno("stat", where.image, errno);
  }
  s.mapping = where.mapping_name();
  s.exists = true;
  s.file_size = static_cast<std::uint64_t>(st.st_size);
  s.allocated = static_cast<std::uint64_t>(st.st_blocks) * 512;
  check_image(where.image);
  LuksDevice dev(where.image);
  dev.load();
  s.uuid = dev.uuid();
  s.cipher = dev.cipher();
  s.sector_size = dev.sector_size();
  s.data_offset = dev.data_offset_bytes();
  s.keyslots = dev.keyslots();
  Observed seen = observe(where);
  s.mapped = seen.mapped;
  s.mounted_at = seen.mounted_at;
  s.stale = seen.is_stale();
  // Our own mapping holds a loop device of the image; without it any loop device is foreign.
  if (!s.mapped) s.foreign_loop_devices = loop_devices_backed_by(st);
  if (s.mounted_at) {
    struct statvfs vfs {};
    if (::statvfs(s.mounted_at->c_str(), &vfs) == 0) {
      s.fs_size = vfs.f_blocks * vfs.f_frsize;
      s.fs_free = vfs.f_bavail * vfs.f_frsize;
    }
  }
  return s;
}

}  // namespace coffer::vault
