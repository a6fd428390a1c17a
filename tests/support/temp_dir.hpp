// A temporary directory removed (recursively) when the test ends.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string_view>
#include <vector>

namespace coffer::test {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::filesystem::path& p) const { return path_ / p; }

 private:
  std::filesystem::path path_;
};

// Writes `contents` to `path` (creating parent directories).
void write_text(const std::filesystem::path& path, std::string_view contents, unsigned mode = 0644);

// `n` pseudo-random bytes, the same for the same seed.
std::vector<std::byte> random_bytes(std::size_t n, unsigned seed);

}  // namespace coffer::test
