// Which loop devices the kernel has bound to a file: an image that something else (losetup,
// cryptsetup by hand, another tool) has attached must not be opened by coffer as well.
#pragma once

#include <sys/stat.h>
#include <string>
#include <vector>

namespace coffer::vault {

// /dev/loopN of every loop device whose backing file is the file `image` (same device and
// inode, so any spelling of it, a hard link included).
std::vector<std::string> loop_devices_backed_by(const struct stat& image);

}  // namespace coffer::vault
