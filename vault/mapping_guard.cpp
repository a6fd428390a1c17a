#include "mapping_guard.hpp"

#include <thread>

#include "coffer/util/log.hpp"

namespace coffer::vault {

MappingGuard MappingGuard::activate(LuksDevice& dev, const config::Credentials& creds,
                                    const std::string& name) {
  unlock_with(dev, creds, name.c_str());
  return MappingGuard(name, dev.image());
}

MappingGuard MappingGuard::activate_with_volume_key(LuksDevice& dev, const std::string& name) {
  int rc = crypt_activate_by_volume_key(dev.get(), name.c_str(), nullptr, 0, 0);
  if (rc < 0) dev.raise("activate mapping for", rc);
  return MappingGuard(name, dev.image());
}

MappingGuard::MappingGuard(MappingGuard&& other) noexcept
    : name_(std::move(other.name_)), image_(std::move(other.image_)) {
  other.name_.clear();
}

MappingGuard::~MappingGuard() {
  if (name_.empty()) return;
  // udev or a just-finished umount may hold the device a moment longer; retry briefly.
  for (int attempt = 0; attempt < 20; ++attempt) {
    try {
      deactivate_mapping(name_, image_);
      return;
    } catch (const Error& e) {
      if (attempt == 19) log::warn("{}", e.what());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

}  // namespace coffer::vault
