// RAII for a dm-crypt mapping: removed when the guard ends unless release()d, so that an
// error or a signal between unlock and mount never leaves a mapping behind.
#pragma once

#include <string>

#include "coffer/config/credentials.hpp"
#include "luks_device.hpp"

namespace coffer::vault {

class MappingGuard {
 public:
  static MappingGuard activate(LuksDevice& dev, const config::Credentials& creds,
                               const std::string& name);
  // After format(): the volume key is still in the context.
  static MappingGuard activate_with_volume_key(LuksDevice& dev, const std::string& name);
  MappingGuard(MappingGuard&& other) noexcept;
  MappingGuard& operator=(MappingGuard&&) = delete;
  ~MappingGuard();
  void release() noexcept { name_.clear(); }

 private:
  MappingGuard(std::string name, std::filesystem::path image)
      : name_(std::move(name)), image_(std::move(image)) {}
  std::string name_;
  std::filesystem::path image_;
};

}  // namespace coffer::vault
