// Mount points: the RAII guard that unmounts, and lookups in /proc/self/mountinfo.
#pragma once

#include <sys/types.h>
#include <filesystem>
#include <optional>

namespace coffer::vault {

class MountGuard {
 public:
  MountGuard(const std::filesystem::path& device, const std::filesystem::path& target);
  MountGuard(MountGuard&&) = delete;
  ~MountGuard();
  // Keeps the mount after the guard ends (a completed `vault open`).
  void release() noexcept { armed_ = false; }

 private:
  std::filesystem::path target_;
  bool armed_ = true;
};

// Where the block device `dev` (major:minor) is mounted, if anywhere.
std::optional<std::filesystem::path> find_mount_of_device(dev_t dev);
// The device number of a block device node, if it exists.
std::optional<dev_t> block_device_number(const std::filesystem::path& node);

// syncfs + umount2; throws Error naming the mount point (EBUSY explained).
void unmount(const std::filesystem::path& target);

}  // namespace coffer::vault
