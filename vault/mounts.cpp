#include "mounts.hpp"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "coffer/util/error.hpp"
#include "coffer/util/fd.hpp"
#include "coffer/util/log.hpp"

namespace coffer::vault {
namespace {

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string unescape_mountinfo(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      int v = 0;
      bool ok = true;
      for (std::size_t k = 1; k <= 3; ++k) {
        if (s[i + k] < '0' || s[i + k] > '7')
          ok = false;
        else
          v = v * 8 + (s[i + k] - '0');
      }
      if (ok) {
        out += static_cast<char>(v);
        i += 3;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

}  // namespace

MountGuard::MountGuard(const std::filesystem::path& device, const std::filesystem::path& target)
    : target_(target) {
  // nosuid/nodev: snapshots hold other machines' setuid files and device nodes as data; they
  // must never act as such on B. noatime: reading a snapshot must not write to the vault.
  unsigned long flags = MS_NOSUID | MS_NODEV | MS_NOATIME;
  if (::mount(device.c_str(), target.c_str(), "ext4", flags, "errors=remount-ro") != 0)
    throw_errno("mount " + device.native() + " on", target, errno);
}

MountGuard::~MountGuard() {
  if (!armed_) return;
  if (::umount2(target_.c_str(), 0) != 0) {
    // Last resort so that a mapping can still be removed; the kernel finishes it when idle.
    log::warn("unmount {}: {}; detaching lazily", target_.native(), std::strerror(errno));
    ::umount2(target_.c_str(), MNT_DETACH);
  }
}

std::optional<std::filesystem::path> find_mount_of_device(dev_t dev) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  std::string want = std::to_string(major(dev)) + ":" + std::to_string(minor(dev));
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string id, parent, majmin, root, mountpoint;
    fields >> id >> parent >> majmin >> root >> mountpoint;
    if (majmin == want) return unescape_mountinfo(mountpoint);
  }
  return std::nullopt;
}

std::optional<dev_t> block_device_number(const std::filesystem::path& node) {
  struct stat st {};
  if (::stat(node.c_str(), &st) != 0 || !S_ISBLK(st.st_mode)) return std::nullopt;
  return st.st_rdev;
}

void unmount(const std::filesystem::path& target) {
  {
    UniqueFd fd = open_fd(target, O_RDONLY | O_DIRECTORY);
    if (::syncfs(fd.get()) != 0) throw_errno("sync", target, errno);
  }
  if (::umount2(target.c_str(), 0) != 0) {
    int err = errno;
    if (err == EBUSY)
      fail(ErrorKind::failed, "unmount", target.native(),
           "a process still uses it (see `fuser -vm " + target.native() + "`)");
    throw_errno("unmount", target, err);
  }
}

}  // namespace coffer::vault
