#include "runtime_state.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <array>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "coffer/util/atomic_file.hpp"
#include "coffer/util/error.hpp"
#include "coffer/util/fd.hpp"
#include "coffer/util/log.hpp"
#include "coffer/util/secret.hpp"
#include "coffer/util/units.hpp"
#include "loop_devices.hpp"
#include "luks_device.hpp"
#include "mounts.hpp"

namespace coffer::vault {

namespace {

// The mapping named in a state file that records `image` (spelled as recorded: the real path at
// open time). Finds a vault whose image was deleted or moved away while it was open.
std::optional<std::string> mapping_recorded_for(const Location& where) {
  std::error_code ec;
  std::filesystem::path real = std::filesystem::weakly_canonical(where.image, ec);
  if (ec) return std::nullopt;
  for (const auto& entry : std::filesystem::directory_iterator(where.runtime_dir, ec)) {
    if (entry.path().extension() != ".state") continue;
    try {
      auto j = nlohmann::json::parse(read_file(entry.path()));
      if (j.at("image").get<std::string>() == real.native())
        return j.at("mapping").get<std::string>();
    } catch (const std::exception&) {
      continue;  // torn or foreign: not this vault's
    }
  }
  return std::nullopt;
}

}  // namespace

std::string Location::mapping_name() const {
  // The vault's identity is the file itself, never its name as typed: the device and inode
  // (st_rdev for a block device). Every spelling (symlink, ./, relative, a second hard link, a
  // bind mount) finds the same lock, mapping and state, and the name is stable within a boot,
  // which is as long as mappings and the runtime directory (a tmpfs) live.
  struct stat st {};
  if (::stat(image.c_str(), &st) != 0) {
    int err = errno;
    if (auto recorded = mapping_recorded_for(*this)) return *recorded;
    throw_errno("open vault", image, err, err == ENOENT ? ErrorKind::missing : ErrorKind::failed);
  }
  if (S_ISBLK(st.st_mode))
    return fmt::format("coffer-blk{}_{}", major(st.st_rdev), minor(st.st_rdev));
  return fmt::format("coffer-{}_{}-{}", major(st.st_dev), minor(st.st_dev), st.st_ino);
}

std::filesystem::path Location::lock_path() const {
  return runtime_dir / (mapping_name() + ".lock");
}
std::filesystem::path Location::state_path() const {
  return runtime_dir / (mapping_name() + ".state");
}
std::filesystem::path Location::default_mount() const {
  return runtime_dir / "mnt" / mapping_name();
}

void write_open_state(const Location& where, const OpenState& s) {
  nlohmann::json j = {{"image", s.image.native()},
                      {"mount", s.mount.native()},
                      {"mapping", s.mapping},
                      {"pid", s.pid}};
  write_file_atomic(where.state_path(), j.dump() + "\n", 0644);
}

std::optional<OpenState> read_open_state(const Location& where) {
  std::string text;
  try {
    text = read_file(where.state_path());
  } catch (const Error&) {
    return std::nullopt;
  }
  try {
    auto j = nlohmann::json::parse(text);
    OpenState s;
    s.image = j.at("image").get<std::string>();
    s.mount = j.at("mount").get<std::string>();
    s.mapping = j.at("mapping").get<std::string>();
    s.pid = j.at("pid").get<long>();
    return s;
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;  // a torn or foreign file counts as no state: the vault is stale
  }
}

void remove_open_state(const Location& where) {
  std::error_code ec;
  std::filesystem::remove(where.state_path(), ec);
}

Observed observe(const Location& where) {
  Observed o;
  std::string name = where.mapping_name();
  o.mapped = device_mapper_available() && mapping_active(name);
  if (o.mapped) {
    if (auto dev = block_device_number("/dev/mapper/" + name))
      o.mounted_at = find_mount_of_device(*dev);
  }
  o.state = read_open_state(where);
  return o;
}

void tear_down(const Location& where, const Observed& o) {
  std::string name = where.mapping_name();
  if (o.mounted_at) unmount(*o.mounted_at);
  if (o.mapped) deactivate_mapping(name, where.image);
  remove_open_state(where);
}

void check_image(const std::filesystem::path& image) {
  struct stat st {};
  if (::stat(image.c_str(), &st) != 0) {
    int err = errno;
    throw_errno("open vault", image, err, err == ENOENT ? ErrorKind::missing : ErrorKind::failed);
  }
  if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
    fail(ErrorKind::missing, "open vault", image.native(), "not a regular file");
  UniqueFd fd = open_fd(image, O_RDONLY);
  std::array<std::byte, 8> head{};
  std::size_t n = read_full(fd.get(), head, image);
  static constexpr unsigned char kMagic[6] = {'L', 'U', 'K', 'S', 0xba, 0xbe};
  bool magic = n >= 8 && std::memcmp(head.data(), kMagic, 6) == 0;
  if (!magic) {
    // The secondary LUKS2 header sits at 16 KiB (default header size); if only it survives
    // the vault is damaged rather than absent.
    std::array<std::byte, 6> second{};
    static constexpr unsigned char kMagic2[6] = {'S', 'K', 'U', 'L', 0xba, 0xbe};
    if (pread_full(fd.get(), second, 16384, image) == 6 &&
        std::memcmp(second.data(), kMagic2, 6) == 0)
      fail(ErrorKind::integrity, "open vault", image.native(),
           "primary LUKS2 header is damaged; restore it from a header backup "
           "(cryptsetup luksHeaderRestore)");
    fail(ErrorKind::missing, "open vault", image.native(), "not a coffer vault (no LUKS2 header)");
  }
  if (static_cast<unsigned char>(head[6]) != 0 || static_cast<unsigned char>(head[7]) != 2)
    fail(ErrorKind::missing, "open vault", image.native(),
         "LUKS version " + std::to_string(static_cast<int>(head[7])) + ", coffer needs LUKS2");
}

std::filesystem::path real_image_path(const std::filesystem::path& image) {
  std::error_code ec;
  std::filesystem::path real = std::filesystem::weakly_canonical(image, ec);
  return ec ? std::filesystem::absolute(image).lexically_normal() : real;
}

void refuse_foreign_loop_devices(const std::filesystem::path& image, std::string_view operation) {
  struct stat st {};
  if (::stat(image.c_str(), &st) != 0) throw_errno("stat", image, errno);
  std::vector<std::string> loops = loop_devices_backed_by(st);
  if (loops.empty()) return;
  std::string list;
  for (const auto& l : loops) list += (list.empty() ? "" : ", ") + l;
  // Two writers of one ext4 corrupt it: whoever attached it (losetup, cryptsetup by hand) must
  // let go first.
  fail(ErrorKind::failed, std::string(operation), image.native(),
       "the image is attached as " + list +
           " by another program; detach it first (losetup -d, or close what uses it)");
}

}  // namespace coffer::vault
