// Growing a closed vault in place: extend the sparse file, map it (LUKS2's data segment is
// "dynamic", so the mapping takes the new size), and grow ext4 online. No data is copied.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>

#include "coffer/util/error.hpp"
#include "coffer/util/fd.hpp"
#include "coffer/util/lock.hpp"
#include "coffer/util/log.hpp"
#include "coffer/util/process.hpp"
#include "coffer/util/units.hpp"
#include "coffer/vault/vault.hpp"
#include "luks_device.hpp"
#include "mapping_guard.hpp"
#include "mounts.hpp"
#include "runtime_state.hpp"

namespace coffer::vault {

void grow(const Location& where, const config::Credentials& creds, std::uint64_t new_size) {
  check_image(where.image);
  if (!device_mapper_available())
    fail(ErrorKind::failed, "grow", where.image.native(),
         "this kernel has no device-mapper (/dev/mapper/control cannot be opened)");
  std::filesystem::create_directories(where.runtime_dir);
  FileLock lock(where.lock_path());
  Observed seen = observe(where);
  if (seen.is_open())
    fail(ErrorKind::failed, "grow", where.image.native(),
         "the vault is open at " + seen.mounted_at->native() + "; close it first");
  if (seen.is_stale()) tear_down(where, seen);
  refuse_foreign_loop_devices(where.image, "grow");

  struct stat st {};
  if (::stat(where.image.c_str(), &st) != 0) throw_errno("stat", where.image, errno);
  auto old_size = static_cast<std::uint64_t>(st.st_size);
  if (new_size < old_size)
    fail(ErrorKind::usage, "grow", where.image.native(),
         "new size " + format_size(new_size) + " is smaller than the current " +
             format_size(old_size) + "; coffer never shrinks a vault");

  LuksDevice dev(where.image);
  dev.load();
  // Check the key before touching the file, so a wrong key changes nothing.
  unlock_with(dev, creds, nullptr);
  {
    UniqueFd fd = open_fd(where.image, O_RDWR);
    if (::ftruncate(fd.get(), static_cast<off_t>(new_size)) != 0)
      throw_errno("extend", where.image, errno);
    fsync_fd(fd.get(), where.image);
  }
  std::string name = where.mapping_name();
  MappingGuard mapping = MappingGuard::activate(dev, creds, name);
  std::filesystem::path target = where.runtime_dir / "mnt" / (name + ".grow");
  std::filesystem::create_directories(target);
  {
    MountGuard mounted("/dev/mapper/" + name, target);
    // Online resize: resize2fs refuses an offline resize without a fresh e2fsck -f, which
    // would read the whole file system.
    std::string resize2fs = find_program("resize2fs").value_or("/sbin/resize2fs");
    run_checked({resize2fs, "/dev/mapper/" + name}, "grow ext4 in", where.image.native());
    unmount(target);
    mounted.release();
  }
  std::filesystem::remove(target);
  log::debug("grew vault {} from {} to {}", where.image.native(), format_size(old_size),
             format_size(new_size));
}

}  // namespace coffer::vault
