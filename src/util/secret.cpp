#include "coffer/util/secret.hpp"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>

#include "coffer/util/error.hpp"
#include "coffer/util/fd.hpp"

namespace coffer {

void ensure_sodium() {
  static const int rc = sodium_init();
  if (rc < 0) fail(ErrorKind::failed, "initialise", "libsodium", "sodium_init failed");
}

Secret::Secret(std::size_t size) : size_(size), capacity_(size) {
  ensure_sodium();
  // sodium_malloc(0) is valid but keep one byte so data() is never null for a live secret.
  data_ = static_cast<std::byte*>(sodium_malloc(size ? size : 1));
  if (!data_) throw_errno("allocate guarded memory for", "secret", ENOMEM);
}

Secret::Secret(Secret&& other) noexcept
    : data_(other.data_), size_(other.size_), capacity_(other.capacity_) {
  other.data_ = nullptr;
  other.size_ = other.capacity_ = 0;
}

Secret& Secret::operator=(Secret&& other) noexcept {
  if (this != &other) {
    if (data_) sodium_free(data_);
    data_ = other.data_;
    size_ = other.size_;
    capacity_ = other.capacity_;
    other.data_ = nullptr;
    other.size_ = other.capacity_ = 0;
  }
  return *this;
}

Secret::~Secret() {
  if (data_) sodium_free(data_);  // wipes before unmapping
}

void Secret::truncate(std::size_t size) noexcept {
  if (size < size_) {
    sodium_memzero(data_ + size, size_ - size);
    size_ = size;
  }
}

Secret Secret::copy_of(std::span<const std::byte> bytes) {
  Secret s(bytes.size());
  if (!bytes.empty()) std::memcpy(s.data(), bytes.data(), bytes.size());
  return s;
}

Secret Secret::random(std::size_t size) {
  Secret s(size);
  randombytes_buf(s.data(), size);
  return s;
}

namespace {

// Reads at most `capacity` bytes; the caller knows the secret is larger than `max` if more came.
Secret read_up_to(int fd, std::string_view shown, std::size_t capacity) {
  Secret buf(capacity);
  buf.truncate(read_full(fd, {buf.data(), capacity}, std::string(shown)));
  return buf;
}

}  // namespace

Secret read_secret_fd(int fd, std::string_view shown, bool strip_newline, std::size_t max) {
  // Guarded memory is locked and filled when allocated: size it to the file (a 64-byte key read
  // into an 8 MiB buffer cost 20 ms), one byte more to notice a file that grew meanwhile.
  struct stat st {};
  Secret buf;
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
      static_cast<std::uint64_t>(st.st_size) < max) {
    const auto capacity = static_cast<std::size_t>(st.st_size) + 1;
    buf = read_up_to(fd, shown, capacity);
    if (buf.size() == capacity) {  // it grew since fstat: read it again, whole
      if (::lseek(fd, 0, SEEK_SET) != 0) throw_errno("read secret from", std::string(shown), errno);
      buf = read_up_to(fd, shown, max + 1);
    }
  } else {
    buf = read_up_to(fd, shown, max + 1);
  }
  const std::size_t got = buf.size();
  if (got > max) {
    fail(ErrorKind::usage, "read secret from", shown,
         "larger than " + std::to_string(max) + " bytes; is this the right file?");
  }
  if (strip_newline && got > 0 && buf.data()[got - 1] == std::byte{'\n'}) buf.truncate(got - 1);
  if (buf.empty()) fail(ErrorKind::usage, "read secret from", shown, "it is empty");
  return buf;
}

Secret read_secret_file(const std::filesystem::path& path, bool strip_newline, std::size_t max) {
  UniqueFd fd = open_fd(path, O_RDONLY | O_NOCTTY);
  return read_secret_fd(fd.get(), path.native(), strip_newline, max);
}

bool secret_equal(std::span<const std::byte> a, std::span<const std::byte> b) noexcept {
  return a.size() == b.size() && sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace coffer
