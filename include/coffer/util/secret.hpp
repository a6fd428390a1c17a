// Secrets (passphrases, key files, volume keys) live in libsodium guarded memory: locked so it
// never reaches swap or a core file (MADV_DONTDUMP), with guard pages, and wiped when freed.
#pragma once

#include <cstddef>
#include <filesystem>
#include <span>
#include <string_view>

namespace coffer {

// Calls sodium_init() once; every function here calls it, others may call it early.
void ensure_sodium();

class Secret {
 public:
  Secret() noexcept = default;
  explicit Secret(std::size_t size);
  Secret(Secret&& other) noexcept;
  Secret& operator=(Secret&& other) noexcept;
  Secret(const Secret&) = delete;
  Secret& operator=(const Secret&) = delete;
  ~Secret();

  std::byte* data() noexcept { return data_; }
  const std::byte* data() const noexcept { return data_; }
  const char* chars() const noexcept { return reinterpret_cast<const char*>(data_); }
  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  std::span<const std::byte> bytes() const noexcept { return {data_, size_}; }
  // Shrinks the visible size (e.g. to drop a trailing newline); the memory is still wiped whole.
  void truncate(std::size_t size) noexcept;

  static Secret copy_of(std::span<const std::byte> bytes);
  static Secret random(std::size_t size);

 private:
  std::byte* data_ = nullptr;
  std::size_t size_ = 0;
  std::size_t capacity_ = 0;
};

// Reads a whole file into a Secret without an intermediate std::string. `max` bounds the size
// (a key file is small; a passphrase file even more). `strip_newline` drops one trailing "\n".
Secret read_secret_file(const std::filesystem::path& path, bool strip_newline,
                        std::size_t max = 8192);
// Reads all of fd (a pipe from a --passphrase-command) into a Secret.
Secret read_secret_fd(int fd, std::string_view shown, bool strip_newline, std::size_t max = 8192);

// Constant-time comparison.
bool secret_equal(std::span<const std::byte> a, std::span<const std::byte> b) noexcept;

}  // namespace coffer
