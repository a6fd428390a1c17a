#include "luks_device.hpp"

#include <fmt/format.h>
#include <cerrno>
#include <cstring>

#include "coffer/util/log.hpp"

namespace coffer::vault {
namespace {

constexpr const char* kCipher = "aes";
constexpr const char* kCipherMode = "xts-plain64";
constexpr std::size_t kVolumeKeyBytes = 64;  // AES-256 in XTS mode

bool explicit_costs(const KdfParams& kdf) {
  return kdf.iterations && kdf.memory_kib && kdf.parallel;
}

crypt_pbkdf_type to_pbkdf(const KdfParams& kdf) {
  if (!explicit_costs(kdf)) {
    // No costs given: libcryptsetup's LUKS2 defaults (argon2id, 1 GiB, 4 threads), which it
    // benchmarks on this machine for time_ms and caps, as cryptsetup does, by the physical
    // (without swap: the free) memory and the online CPUs. Zeros would be refused
    // ("parallel threads cannot be zero").
    crypt_pbkdf_type p = *crypt_get_pbkdf_default(CRYPT_LUKS2);
    p.type = CRYPT_KDF_ARGON2ID;
    if (kdf.time_ms) p.time_ms = kdf.time_ms;
    p.iterations = 0;
    p.flags = 0;
    return p;
  }
  crypt_pbkdf_type p{};
  p.type = CRYPT_KDF_ARGON2ID;
  p.hash = "sha256";
  p.time_ms = kdf.time_ms;
  p.iterations = kdf.iterations;
  p.max_memory_kb = kdf.memory_kib;
  p.parallel_threads = kdf.parallel;
  // Explicit parameters are used as given: no benchmark, never lowered.
  p.flags = CRYPT_PBKDF_NO_BENCHMARK;
  return p;
}

}  // namespace

LuksDevice::LuksDevice(const std::filesystem::path& image) : image_(image) {
  int rc = crypt_init(&cd_, image.c_str());
  if (rc < 0) {
    if (rc == -ENOENT || rc == -ENOTBLK) throw_errno("open vault", image, -rc, ErrorKind::missing);
    throw_errno("open vault", image, -rc);
  }
  crypt_set_log_callback(cd_, &LuksDevice::log_callback, this);
}

std::optional<LuksDevice> LuksDevice::for_active_mapping(const std::string& name) {
  LuksDevice dev;
  if (crypt_init_by_name(&dev.cd_, name.c_str()) < 0) return std::nullopt;
  crypt_set_log_callback(dev.cd_, &LuksDevice::log_callback, &dev);
  return std::optional<LuksDevice>(std::move(dev));
}

LuksDevice::LuksDevice(LuksDevice&& other) noexcept
    : cd_(other.cd_),
      image_(std::move(other.image_)),
      last_error_(std::move(other.last_error_)),
      formatted_(other.formatted_) {
  other.cd_ = nullptr;
  if (cd_) crypt_set_log_callback(cd_, &LuksDevice::log_callback, this);
}

LuksDevice::~LuksDevice() {
  if (cd_) crypt_free(cd_);
}

void LuksDevice::log_callback(int level, const char* msg, void* self) {
  if (!msg) return;
  std::string text(msg);
  while (!text.empty() && text.back() == '\n') text.pop_back();
  if (level == CRYPT_LOG_ERROR) static_cast<LuksDevice*>(self)->last_error_ = text;
  if (level == CRYPT_LOG_DEBUG || level == CRYPT_LOG_DEBUG_JSON) return;
  log::debug("libcryptsetup: {}", text);
}

void LuksDevice::raise(std::string_view operation, int rc, ErrorKind kind) const {
  std::string reason = last_error_;
  throw Error(kind, std::string(operation), image_.native(), reason,
              std::error_code(-rc, std::generic_category()));
}

void LuksDevice::load() {
  int rc = crypt_load(cd_, CRYPT_LUKS2, nullptr);
  if (rc == 0) return;
  raise("read LUKS2 header of", rc);
}

void LuksDevice::format(const KdfParams& kdf, const std::string& label) {
  crypt_pbkdf_type pbkdf = to_pbkdf(kdf);
  crypt_params_luks2 params{};
  params.pbkdf = &pbkdf;
  params.sector_size = 4096;  // one LUKS sector per ext4 block; replication works in 4 KiB units
  params.label = label.c_str();
  int rc = crypt_format(cd_, CRYPT_LUKS2, kCipher, kCipherMode, nullptr, nullptr, kVolumeKeyBytes,
                        &params);
  if (rc < 0) raise("format LUKS2 on", rc);
  formatted_ = true;
}

int LuksDevice::add_keyslot(const Secret& secret, const KdfParams& kdf) {
  int rc = 0;
  // After format() the context holds the same parameters, and once the first slot has
  // benchmarked them libcryptsetup reuses the result; setting them again would benchmark again.
  if (!formatted_ || explicit_costs(kdf)) {
    crypt_pbkdf_type pbkdf = to_pbkdf(kdf);
    rc = crypt_set_pbkdf_type(cd_, &pbkdf);
    if (rc < 0) raise("set key derivation parameters for", rc);
  }
  rc = crypt_keyslot_add_by_volume_key(cd_, CRYPT_ANY_SLOT, nullptr, 0, secret.chars(),
                                       secret.size());
  if (rc < 0) raise("add key slot to", rc);
  return rc;
}

int LuksDevice::add_keyslot_by_passphrase(const Secret& existing, const Secret& added,
                                          const KdfParams& kdf) {
  crypt_pbkdf_type pbkdf = to_pbkdf(kdf);
  int rc = crypt_set_pbkdf_type(cd_, &pbkdf);
  if (rc < 0) raise("set key derivation parameters for", rc);
  rc = crypt_keyslot_add_by_passphrase(cd_, CRYPT_ANY_SLOT, existing.chars(), existing.size(),
                                       added.chars(), added.size());
  if (rc < 0) raise("add key slot to", rc);
  return rc;
}

int LuksDevice::unlock(const Secret& secret, const std::string& source, const char* mapping) {
  // CRYPT_ACTIVATE_ALLOW_DISCARDS is deliberately not set: discards would punch holes that
  // change the image behind replication's back and leak which blocks are free.
  int rc =
      crypt_activate_by_passphrase(cd_, mapping, CRYPT_ANY_SLOT, secret.chars(), secret.size(), 0);
  if (rc >= 0) return rc;
  if (rc == -EPERM || rc == -ENOENT)
    fail(ErrorKind::bad_key, "unlock", image_.native(), "no key slot opens with the " + source);
  raise(mapping ? "activate mapping for" : "unlock", rc);
}

void LuksDevice::destroy_keyslot(int slot) {
  int rc = crypt_keyslot_destroy(cd_, slot);
  if (rc < 0) raise(fmt::format("remove key slot {} of", slot), rc);
}

Secret LuksDevice::volume_key(const Secret& secret, const std::string& source) {
  Secret key(kVolumeKeyBytes);
  std::size_t size = key.size();
  int rc = crypt_volume_key_get(cd_, CRYPT_ANY_SLOT, reinterpret_cast<char*>(key.data()), &size,
                                secret.chars(), secret.size());
  if (rc == -EPERM || rc == -ENOENT)
    fail(ErrorKind::bad_key, "unlock", image_.native(), "no key slot opens with the " + source);
  if (rc < 0) raise("read volume key of", rc);
  key.truncate(size);
  return key;
}

std::string LuksDevice::uuid() const {
  const char* u = crypt_get_uuid(cd_);
  return u ? u : "";
}

std::string LuksDevice::cipher() const {
  const char* c = crypt_get_cipher(cd_);
  const char* m = crypt_get_cipher_mode(cd_);
  return fmt::format("{}-{}", c ? c : "?", m ? m : "?");
}

int LuksDevice::sector_size() const {
  return crypt_get_sector_size(cd_);
}

std::uint64_t LuksDevice::data_offset_bytes() const {
  return crypt_get_data_offset(cd_) * 512;
}

std::vector<KeySlot> LuksDevice::keyslots() const {
  std::vector<KeySlot> slots;
  int max = crypt_keyslot_max(CRYPT_LUKS2);
  for (int i = 0; i < max; ++i) {
    crypt_keyslot_info info = crypt_keyslot_status(cd_, i);
    if (info != CRYPT_SLOT_ACTIVE && info != CRYPT_SLOT_ACTIVE_LAST) continue;
    KeySlot s;
    s.slot = i;
    crypt_pbkdf_type p{};
    if (crypt_keyslot_get_pbkdf(cd_, i, &p) == 0) {
      s.kdf = p.type ? p.type : "";
      s.kdf_params.iterations = p.iterations;
      s.kdf_params.memory_kib = p.max_memory_kb;
      s.kdf_params.parallel = p.parallel_threads;
    }
    slots.push_back(s);
  }
  return slots;
}

void deactivate_mapping(const std::string& name, const std::filesystem::path& shown) {
  int rc = crypt_deactivate_by_name(nullptr, name.c_str(), 0);
  if (rc < 0 && rc != -ENODEV)
    throw Error(ErrorKind::failed, "close mapping " + name + " of", shown.native(), {},
                std::error_code(-rc, std::generic_category()));
}

bool mapping_active(const std::string& name) {
  crypt_status_info st = crypt_status(nullptr, name.c_str());
  return st == CRYPT_ACTIVE || st == CRYPT_BUSY;
}

}  // namespace coffer::vault

namespace coffer::vault {

Unlocked unlock_with(LuksDevice& dev, const config::Credentials& creds, const char* mapping) {
  if (!creds.any())
    fail(ErrorKind::usage, "unlock", dev.image().native(),
         "no key given (use --key-file, --passphrase-file or --passphrase-command)");
  std::string tried;
  for (auto [secret, source] : {std::pair{&creds.key, &creds.key_source},
                                std::pair{&creds.passphrase, &creds.passphrase_source}}) {
    if (!*secret) continue;
    try {
      return {dev.unlock(**secret, *source, mapping), &**secret, source};
    } catch (const Error& e) {
      if (e.kind() != ErrorKind::bad_key) throw;
      tried += tried.empty() ? *source : " or the " + *source;
    }
  }
  fail(ErrorKind::bad_key, "unlock", dev.image().native(), "no key slot opens with the " + tried);
}

}  // namespace coffer::vault
