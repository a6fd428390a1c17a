// The vault: a sparse image file holding LUKS2 (argon2id, 4 KiB sectors) with ext4 inside.
// Layout, key slots and the runtime state are described in docs/vault.md.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "coffer/config/credentials.hpp"
#include "coffer/util/secret.hpp"

namespace coffer::vault {

// argon2id cost. Zeros mean libcryptsetup's LUKS2 defaults, benchmarked on this machine for
// time_ms (memory capped by what the machine has); explicit values are written into the
// header as given and never lowered behind the user's back.
struct KdfParams {
  std::uint32_t memory_kib = 0;
  std::uint32_t iterations = 0;
  std::uint32_t parallel = 0;
  std::uint32_t time_ms = 2000;
};

struct KeySlot {
  int slot = 0;
  std::string kdf;
  KdfParams kdf_params;
};

// Where a vault lives and where its runtime files (lock, state, default mount point) go.
struct Location {
  std::filesystem::path image;
  std::filesystem::path runtime_dir = "/run/coffer";

  std::string mapping_name() const;         // "coffer-<name>-<hash of the image's real path>"
  std::filesystem::path lock_path() const;
  std::filesystem::path state_path() const;
  std::filesystem::path default_mount() const;
};

struct CreateOptions {
  std::uint64_t size = 0;
  KdfParams kdf;
  std::string label = "coffer";
};

struct Status {
  std::filesystem::path image;
  bool exists = false;
  std::uint64_t file_size = 0;
  std::uint64_t allocated = 0;  // bytes actually stored (the image is sparse)
  std::string uuid;
  std::string cipher;
  int sector_size = 0;
  std::uint64_t data_offset = 0;
  std::vector<KeySlot> keyslots;
  std::string mapping;
  bool mapped = false;
  std::optional<std::filesystem::path> mounted_at;
  bool stale = false;  // mapped or mounted without a completed open: a killed run
  std::uint64_t fs_size = 0, fs_free = 0;
};

// Creates IMAGE (must not exist): sparse file, LUKS2, a key slot for each credential, ext4.
// On any error the half-made image is removed. Returns the key slots with the argon2id costs
// written into them (benchmarked unless options.kdf gives them).
std::vector<KeySlot> create(const Location& where, const CreateOptions& options,
                            const config::Credentials& new_keys);

// Unlocks, maps and mounts at `mount` (default: where.default_mount()), creating the directory.
// A stale mapping or mount of the same image is cleaned first. Returns the mount point.
std::filesystem::path open(const Location& where, const config::Credentials& creds,
                           const std::optional<std::filesystem::path>& mount);

// Syncs, unmounts and unmaps. Also cleans a stale mapping. Error if the vault is not open.
void close(const Location& where);

Status status(const Location& where);

// Adds a key slot for `new_key`, authorised by one of `creds`. Returns the new slot number.
int add_key(const Location& where, const config::Credentials& creds, const Secret& new_key,
            const KdfParams& kdf);
// Removes `slot`, or the slot `creds` opens if `slot` is empty. Never removes the last slot.
int remove_key(const Location& where, const config::Credentials& creds, std::optional<int> slot);

void header_backup(const Location& where, const std::filesystem::path& file);

// Grows file, LUKS mapping and ext4 to `new_size` without copying data. The vault must be closed.
void grow(const Location& where, const config::Credentials& creds, std::uint64_t new_size);

// The LUKS volume key, unlocked by `creds` (for deriving replication MAC keys on B).
Secret volume_key(const Location& where, const config::Credentials& creds);

// True if /dev/mapper/control can be opened: dm-crypt can be used on this kernel.
bool device_mapper_available();

}  // namespace coffer::vault
