#include "loop_devices.hpp"

#include <fcntl.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <cerrno>
#include <filesystem>

#include "coffer/util/error.hpp"
#include "coffer/util/fd.hpp"

namespace coffer::vault {
namespace {

bool same_file(const struct stat& image, dev_t dev, ino_t ino) {
  return image.st_dev == dev && image.st_ino == ino;
}

// The backing file's identity, from the loop device itself (exact even for a deleted or
// renamed file); without access to the node, from the path sysfs shows.
bool backed_by(const std::filesystem::path& sys_loop, const std::string& node,
               const struct stat& image) {
  int fd = ::open(node.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    UniqueFd guard(fd);
    loop_info64 info{};
    if (::ioctl(fd, LOOP_GET_STATUS64, &info) == 0)
      return same_file(image, static_cast<dev_t>(info.lo_device),
                       static_cast<ino_t>(info.lo_inode));
    return false;  // ENXIO: not bound any more
  }
  std::string backing;
  try {
    backing = read_file(sys_loop / "loop" / "backing_file");
  } catch (const Error&) {
    return false;
  }
  while (!backing.empty() && backing.back() == '\n') backing.pop_back();
  struct stat st {};
  return ::stat(backing.c_str(), &st) == 0 && same_file(image, st.st_dev, st.st_ino);
}

}  // namespace

std::vector<std::string> loop_devices_backed_by(const struct stat& image) {
  std::vector<std::string> found;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/sys/block", ec)) {
    std::string name = entry.path().filename().native();
    if (name.rfind("loop", 0) != 0) continue;
    // Only bound loop devices have loop/backing_file.
    if (!std::filesystem::exists(entry.path() / "loop" / "backing_file", ec)) continue;
    std::string node = "/dev/" + name;
    if (backed_by(entry.path(), node, image)) found.push_back(node);
  }
  return found;
}

}  // namespace coffer::vault
