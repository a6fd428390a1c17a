// Key slots and the header: add-key, remove-key, header-backup, and the volume key for MACs.
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>
#include <cerrno>

#include "coffer/util/error.hpp"
#include "coffer/util/fd.hpp"
#include "coffer/util/lock.hpp"
#include "coffer/vault/vault.hpp"
#include "luks_device.hpp"
#include "runtime_state.hpp"

namespace coffer::vault {
namespace {

LuksDevice load(const Location& where) {
  check_image(where.image);
  LuksDevice dev(where.image);
  dev.load();
  return dev;
}

}  // namespace

int add_key(const Location& where, const config::Credentials& creds, const Secret& new_key,
            const KdfParams& kdf) {
  std::filesystem::create_directories(where.runtime_dir);
  FileLock lock(where.lock_path());
  LuksDevice dev = load(where);
  const Secret& old = *unlock_with(dev, creds, nullptr).secret;
  return dev.add_keyslot_by_passphrase(old, new_key, kdf);
}

int remove_key(const Location& where, const config::Credentials& creds, std::optional<int> slot) {
  std::filesystem::create_directories(where.runtime_dir);
  FileLock lock(where.lock_path());
  LuksDevice dev = load(where);
  int opened = unlock_with(dev, creds, nullptr).slot;
  int target = slot.value_or(opened);
  auto slots = dev.keyslots();
  bool exists = false;
  for (const auto& s : slots) exists |= s.slot == target;
  if (!exists)
    fail(ErrorKind::usage, "remove key from", where.image.native(),
         fmt::format("key slot {} is not in use", target));
  if (slots.size() <= 1)
    fail(ErrorKind::failed, "remove key from", where.image.native(),
         fmt::format("key slot {} is the last one; removing it would lock the vault forever",
                     target));
  dev.destroy_keyslot(target);
  return target;
}

void header_backup(const Location& where, const std::filesystem::path& file) {
  LuksDevice dev = load(where);
  if (std::filesystem::exists(file))
    fail(ErrorKind::failed, "back up header of", where.image.native(),
         file.native() + " exists; refusing to overwrite it");
  // libcryptsetup writes the file itself; write beside the target, fsync, then rename so a
  // crash never leaves a truncated backup under the final name.
  std::filesystem::path temp = file.native() + ".tmp." + std::to_string(::getpid());
  std::filesystem::remove(temp);
  int rc = crypt_header_backup(dev.get(), CRYPT_LUKS2, temp.c_str());
  if (rc < 0) {
    std::filesystem::remove(temp);
    dev.raise("back up header to " + file.native() + " from", rc);
  }
  {
    UniqueFd fd = open_fd(temp, O_RDONLY);
    fsync_fd(fd.get(), temp);
  }
  if (::rename(temp.c_str(), file.c_str()) != 0) {
    int err = errno;
    std::filesystem::remove(temp);
    throw_errno("rename header backup to", file, err);
  }
  fsync_dir(file.parent_path().empty() ? "." : file.parent_path());
}

Secret volume_key(const Location& where, const config::Credentials& creds) {
  LuksDevice dev = load(where);
  Unlocked u = unlock_with(dev, creds, nullptr);
  return dev.volume_key(*u.secret, *u.source);
}

std::vector<std::pair<std::uint64_t, std::uint64_t>> unlock_areas(const Location& where) {
  LuksDevice dev = load(where);
  std::uint64_t metadata = 0, keyslots = 0;
  if (int rc = crypt_get_metadata_size(dev.get(), &metadata, &keyslots); rc < 0)
    dev.raise("read the header layout of", rc);
  std::vector<std::pair<std::uint64_t, std::uint64_t>> areas{{0, 2 * metadata}};
  for (int slot = 0; slot < crypt_keyslot_max(CRYPT_LUKS2); ++slot) {
    crypt_keyslot_info info = crypt_keyslot_status(dev.get(), slot);
    if (info != CRYPT_SLOT_ACTIVE && info != CRYPT_SLOT_ACTIVE_LAST) continue;
    std::uint64_t offset = 0, length = 0;
    if (crypt_keyslot_area(dev.get(), slot, &offset, &length) == 0)
      areas.emplace_back(offset, length);
  }
  return areas;
}

}  // namespace coffer::vault
