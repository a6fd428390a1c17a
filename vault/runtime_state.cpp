#include "runtime_state.hpp"

#include <array>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <nlohmann/json.hpp>
#include <sodium.h>
#include <sys/stat.h>

#include "coffer/util/atomic_file.hpp"
#include "coffer/util/error.hpp"
#include "coffer/util/fd.hpp"
#include "coffer/util/log.hpp"
#include "coffer/util/secret.hpp"
#include "coffer/util/units.hpp"
#include "luks_device.hpp"
#include "mounts.hpp"

namespace coffer::vault {

std::string Location::mapping_name() const {
  // The name must be stable across runs (to find a stale mapping after a crash) and differ
  // between vaults: the image's file name for humans, a hash of its real path for uniqueness.
  std::error_code ec;
  std::filesystem::path real = std::filesystem::weakly_canonical(image, ec);
  if (ec) real = std::filesystem::absolute(image);
  ensure_sodium();
  std::array<unsigned char, 8> h{};
  crypto_generichash(h.data(), h.size(), reinterpret_cast<const unsigned char*>(real.c_str()),
                     real.native().size(), nullptr, 0);
  std::string stem;
  const std::string name = image.stem().native();  // a named copy: the temporary would dangle
  for (char c : name) {
    if (stem.size() >= 24) break;
    stem += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') ? c : '_';
  }
  return "coffer-" + stem + "-" + to_hex(h.data(), h.size());
}

std::filesystem::path Location::lock_path() const { return runtime_dir / (mapping_name() + ".lock"); }
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
    if (auto dev = block_device_number("/dev/mapper/" + name)) o.mounted_at = find_mount_of_device(*dev);
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
    fail(ErrorKind::missing, "open vault", image.native(),
         "not a coffer vault (no LUKS2 header)");
  }
  if (static_cast<unsigned char>(head[6]) != 0 || static_cast<unsigned char>(head[7]) != 2)
    fail(ErrorKind::missing, "open vault", image.native(),
         "LUKS version " + std::to_string(static_cast<int>(head[7])) + ", coffer needs LUKS2");
}

}  // namespace coffer::vault
