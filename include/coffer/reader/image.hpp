// A closed vault image read in user space: the LUKS2 header gives the cipher, the sector size
// and (unlocked with the vault's credentials) the volume key; the data segment is decrypted
// sector by sector exactly as dm-crypt would (docs/reader.md). Read-only: the image is opened
// O_RDONLY and nothing is ever written to it. No device-mapper, no root.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <utility>

#include "coffer/config/credentials.hpp"
#include "coffer/util/fd.hpp"
#include "coffer/util/secret.hpp"

namespace coffer::reader {

// AES-XTS with the plain64 IV: the 16-byte tweak is the little-endian sector number.
// (For LUKS2, dm-crypt numbers sectors in 512-byte units even with 4 KiB sectors.)
// Holds its own copy of the key; move-only (wraps an OpenSSL EVP_CIPHER_CTX).
class XtsDecryptor {
 public:
  // `key` is the whole XTS key (32 bytes: AES-128, 64 bytes: AES-256).
  XtsDecryptor(std::span<const std::byte> key, std::size_t sector_size);
  XtsDecryptor(XtsDecryptor&&) noexcept;
  XtsDecryptor& operator=(XtsDecryptor&&) = delete;
  ~XtsDecryptor();

  std::size_t sector_size() const noexcept { return sector_size_; }
  // Decrypts whole sectors in place; `first_iv` is the IV of data's first sector, each next
  // sector's IV is `iv_step` more (dm-crypt LUKS2: sector_size / 512).
  void decrypt(std::span<std::byte> data, std::uint64_t first_iv, std::uint64_t iv_step = 1) const;

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
  std::size_t sector_size_;
};

struct ImageGeometry {
  std::uint64_t data_offset = 0;  // bytes: where the encrypted segment starts in the file
  std::uint64_t data_size = 0;    // bytes of plaintext (the segment runs to the end of file)
  std::size_t sector_size = 0;    // 4096 for coffer vaults
  std::uint64_t iv_offset = 0;    // the segment's IV tweak, in sectors
  bool iv_large_sectors = false;  // IVs count sector_size units; LUKS2 counts 512 bytes
  std::size_t key_bytes = 0;
};

// Where the encrypted bytes of an image come from: the image file, or (restore from C) blocks
// of a replica fetched and checked on demand. Errors are thrown as coffer::Error and reach the
// caller of FileSystem unchanged (an integrity error stays one).
class CipherSource {
 public:
  virtual ~CipherSource() = default;
  virtual std::uint64_t size() const = 0;  // bytes of the whole image file
  // Reads bytes [offset, offset + out.size()) of the image file (header included).
  virtual void read(std::uint64_t offset, std::span<std::byte> out) const = 0;
  // A hint: these ranges of the image file will be read soon (fetch them together).
  virtual void will_read(std::span<const std::pair<std::uint64_t, std::uint64_t>>) const {}
};

class Image {
 public:
  // Loads the LUKS2 header of `path` and unlocks the volume key with `creds` (key file first,
  // then passphrase; a wrong one is ErrorKind::bad_key). Refuses ciphers other than
  // aes-xts-plain64.
  Image(const std::filesystem::path& path, const config::Credentials& creds);
  // An image whose LUKS2 header was already unlocked elsewhere: `header` is a file holding at
  // least its metadata (libcryptsetup reads the geometry from it), `volume_key` its key, and
  // every byte comes from `source`. `shown` names it in messages.
  Image(const std::filesystem::path& header, std::string shown, const Secret& volume_key,
        std::shared_ptr<const CipherSource> source);

  const CipherSource& source() const noexcept { return *source_; }

  const std::filesystem::path& path() const noexcept { return path_; }
  const ImageGeometry& geometry() const noexcept { return geo_; }
  std::uint64_t size() const noexcept { return geo_.data_size; }

  // Reads plaintext bytes [offset, offset + out.size()) of the data segment. Short reads past
  // the end are an error.
  void read(std::uint64_t offset, std::span<std::byte> out) const;

 private:
  void load_geometry(const std::filesystem::path& header);
  void set_key(const Secret& volume_key);

  std::filesystem::path path_;
  std::shared_ptr<const CipherSource> source_;
  ImageGeometry geo_;
  std::unique_ptr<XtsDecryptor> xts_;
};

}  // namespace coffer::reader
