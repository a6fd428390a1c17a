// RAII handle for libcryptsetup's crypt_device, and the one place where libcryptsetup's
// "negative errno plus log callback" convention becomes coffer::Error.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <libcryptsetup.h>

#include "coffer/util/error.hpp"
#include "coffer/util/secret.hpp"
#include "coffer/vault/vault.hpp"

namespace coffer::vault {

class LuksDevice {
 public:
  // crypt_init on an image file; nothing is read until load() or format().
  explicit LuksDevice(const std::filesystem::path& image);
  // crypt_init_by_name on an active mapping.
  static std::optional<LuksDevice> for_active_mapping(const std::string& name);
  LuksDevice(LuksDevice&& other) noexcept;
  LuksDevice& operator=(LuksDevice&&) = delete;
  ~LuksDevice();

  crypt_device* get() const noexcept { return cd_; }
  const std::filesystem::path& image() const noexcept { return image_; }

  // Loads the LUKS2 header; a file that is not LUKS2 or a damaged header becomes a clear Error.
  void load();
  void format(const KdfParams& kdf, const std::string& label);
  // Adds a key slot for `secret` using the volume key held since format()/unlock(). Returns slot.
  int add_keyslot(const Secret& secret, const KdfParams& kdf);
  // Adds a key slot for `added`, authorised by `existing` (no volume key in the context needed).
  int add_keyslot_by_passphrase(const Secret& existing, const Secret& added, const KdfParams& kdf);
  // Verifies `secret` against the key slots; with `mapping` non-empty activates the mapping.
  // Returns the slot it opened. Wrong secrets raise ErrorKind::bad_key naming `source`.
  int unlock(const Secret& secret, const std::string& source, const char* mapping = nullptr);
  void destroy_keyslot(int slot);
  Secret volume_key(const Secret& secret, const std::string& source);

  std::string uuid() const;
  std::string cipher() const;
  int sector_size() const;
  std::uint64_t data_offset_bytes() const;
  std::vector<KeySlot> keyslots() const;

  // Builds an Error from a negative libcryptsetup return code, adding the last message
  // libcryptsetup logged (it often names the real cause, e.g. missing device-mapper).
  [[noreturn]] void raise(std::string_view operation, int rc,
                          ErrorKind kind = ErrorKind::failed) const;

 private:
  LuksDevice() = default;
  static void log_callback(int level, const char* msg, void* self);

  crypt_device* cd_ = nullptr;
  std::filesystem::path image_;
  std::string last_error_;
  bool formatted_ = false;  // format() set the key derivation parameters in this context
};

void deactivate_mapping(const std::string& name, const std::filesystem::path& shown);
bool mapping_active(const std::string& name);

}  // namespace coffer::vault

namespace coffer::vault {

struct Unlocked {
  int slot;
  const Secret* secret;  // the credential that opened it (points into the Credentials)
  const std::string* source;
};
// Tries the key file, then the passphrase. If neither opens, raises bad_key naming every
// source tried; if `creds` is empty, a usage error.
Unlocked unlock_with(LuksDevice& dev, const config::Credentials& creds, const char* mapping);

}  // namespace coffer::vault
