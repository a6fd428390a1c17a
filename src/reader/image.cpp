// User-space LUKS2 + AES-XTS: see include/coffer/reader/image.hpp and docs/reader.md.
#include "coffer/reader/image.hpp"

#include <fcntl.h>
#include <libcryptsetup.h>
#include <openssl/evp.h>
#include <sys/stat.h>

#include <cstring>
#include <string>
#include <vector>

#include "coffer/util/error.hpp"
#include "coffer/vault/vault.hpp"

namespace coffer::reader {

struct XtsDecryptor::Ctx {
  EVP_CIPHER_CTX* ctx = nullptr;
  ~Ctx() { EVP_CIPHER_CTX_free(ctx); }
};

XtsDecryptor::XtsDecryptor(std::span<const std::byte> key, std::size_t sector_size)
    : ctx_(std::make_unique<Ctx>()), sector_size_(sector_size) {
  const EVP_CIPHER* cipher = nullptr;
  if (key.size() == 64)
    cipher = EVP_aes_256_xts();
  else if (key.size() == 32)
    cipher = EVP_aes_128_xts();
  else
    fail(ErrorKind::failed, "set up aes-xts", std::to_string(key.size() * 8) + "-bit key",
         "expected a 256- or 512-bit XTS key");
  if (sector_size < 16 || sector_size % 16 != 0)
    fail(ErrorKind::failed, "set up aes-xts", std::to_string(sector_size), "bad sector size");
  ctx_->ctx = EVP_CIPHER_CTX_new();
  // The key is set once; each sector only sets its IV (EVP keeps the expanded key).
  if (!ctx_->ctx ||
      EVP_DecryptInit_ex(ctx_->ctx, cipher, nullptr,
                         reinterpret_cast<const unsigned char*>(key.data()), nullptr) != 1)
    fail(ErrorKind::failed, "set up aes-xts", "OpenSSL", "EVP_DecryptInit_ex failed");
  EVP_CIPHER_CTX_set_padding(ctx_->ctx, 0);
}

XtsDecryptor::XtsDecryptor(XtsDecryptor&&) noexcept = default;
XtsDecryptor::~XtsDecryptor() = default;

void XtsDecryptor::decrypt(std::span<std::byte> data, std::uint64_t first_iv,
                           std::uint64_t iv_step) const {
  if (data.size() % sector_size_ != 0)
    fail(ErrorKind::failed, "decrypt", std::to_string(data.size()) + " bytes",
         "not a whole number of sectors");
  for (std::size_t at = 0; at < data.size(); at += sector_size_) {
    unsigned char iv[16] = {};
    std::uint64_t n = first_iv + at / sector_size_ * iv_step;
    for (int i = 0; i < 8; ++i) iv[i] = static_cast<unsigned char>(n >> (8 * i));  // plain64: LE
    auto* p = reinterpret_cast<unsigned char*>(data.data() + at);
    int out = 0;
    if (EVP_DecryptInit_ex(ctx_->ctx, nullptr, nullptr, nullptr, iv) != 1 ||
        EVP_DecryptUpdate(ctx_->ctx, p, &out, p, static_cast<int>(sector_size_)) != 1 ||
        static_cast<std::size_t>(out) != sector_size_)
      fail(ErrorKind::failed, "decrypt sector", std::to_string(n),
           "OpenSSL EVP_DecryptUpdate failed");
  }
}

namespace {

// RAII for the crypt_device used only to read the header (crypt_init + crypt_load on the file;
// neither needs device-mapper).
class Header {
 public:
  explicit Header(const std::filesystem::path& path) : path_(path) {
    int rc = crypt_init(&cd_, path.c_str());
    if (rc < 0) throw_errno("read LUKS2 header of", path, -rc);
    rc = crypt_load(cd_, CRYPT_LUKS2, nullptr);
    if (rc < 0)
      fail(ErrorKind::failed, "read LUKS2 header of", path.native(),
           "not a LUKS2 image or a damaged header");
  }
  Header(const Header&) = delete;
  ~Header() { crypt_free(cd_); }
  crypt_device* get() const { return cd_; }

 private:
  std::filesystem::path path_;
  crypt_device* cd_ = nullptr;
};

}  // namespace

namespace {

// The image file itself.
class FileCipherSource final : public CipherSource {
 public:
  explicit FileCipherSource(const std::filesystem::path& path)
      : path_(path), fd_(open_fd(path, O_RDONLY)) {
    struct stat st {};
    if (::fstat(fd_.get(), &st) != 0) throw_errno("stat", path, errno);
    size_ = static_cast<std::uint64_t>(st.st_size);
  }
  std::uint64_t size() const override { return size_; }
  void read(std::uint64_t offset, std::span<std::byte> out) const override {
    std::size_t got = pread_full(fd_.get(), out, static_cast<off_t>(offset), path_);
    if (got != out.size()) fail(ErrorKind::failed, "read", path_.native(), "short read");
  }

 private:
  std::filesystem::path path_;
  UniqueFd fd_;
  std::uint64_t size_ = 0;
};

}  // namespace

void Image::load_geometry(const std::filesystem::path& header) {
  Header h(header);
  std::string cipher = crypt_get_cipher(h.get()) ? crypt_get_cipher(h.get()) : "";
  std::string mode = crypt_get_cipher_mode(h.get()) ? crypt_get_cipher_mode(h.get()) : "";
  if (cipher != "aes" || mode != "xts-plain64")
    fail(ErrorKind::failed, "read", path_.native(),
         "cipher " + cipher + "-" + mode + " is not supported (only aes-xts-plain64)");
  geo_.sector_size = static_cast<std::size_t>(crypt_get_sector_size(h.get()));
  geo_.data_offset = crypt_get_data_offset(h.get()) * 512;  // libcryptsetup counts 512 bytes
  geo_.iv_offset = crypt_get_iv_offset(h.get());
  geo_.key_bytes = static_cast<std::size_t>(crypt_get_volume_key_size(h.get()));
  // cryptsetup sets dm-crypt's iv_large_sectors only for plain mode (--iv-large-sectors);
  // a LUKS2 mapping counts IVs in 512-byte units even with 4 KiB sectors. Seen: the UML test
  // (tests/uml/test_reader.cpp) disagreed with dm-crypt on every block but the first when
  // the IV counted 4 KiB sectors.
  geo_.iv_large_sectors = false;
  const std::uint64_t file_size = source_->size();
  if (file_size < geo_.data_offset)
    fail(ErrorKind::failed, "read", path_.native(), "image is shorter than its LUKS2 header");
  geo_.data_size = (file_size - geo_.data_offset) / geo_.sector_size * geo_.sector_size;
}

void Image::set_key(const Secret& key) {
  if (key.size() != geo_.key_bytes)
    fail(ErrorKind::failed, "read", path_.native(), "the volume key does not fit the header");
  xts_ = std::make_unique<XtsDecryptor>(std::span<const std::byte>(key.data(), key.size()),
                                        geo_.sector_size);
}

Image::Image(const std::filesystem::path& path, const config::Credentials& creds)
    : path_(path), source_(std::make_shared<FileCipherSource>(path)) {
  load_geometry(path);
  set_key(vault::volume_key(vault::Location{path}, creds));
}

Image::Image(const std::filesystem::path& header, std::string shown, const Secret& volume_key,
             std::shared_ptr<const CipherSource> source)
    : path_(std::move(shown)), source_(std::move(source)) {
  load_geometry(header);
  set_key(volume_key);
}

void Image::read(std::uint64_t offset, std::span<std::byte> out) const {
  if (out.empty()) return;
  if (offset > geo_.data_size || out.size() > geo_.data_size - offset)
    fail(ErrorKind::failed, "read", path_.native(),
         "offset " + std::to_string(offset) + " is past the end of the data segment");
  const std::uint64_t ss = geo_.sector_size;
  std::uint64_t first = offset / ss, last = (offset + out.size() + ss - 1) / ss;
  bool aligned = offset % ss == 0 && out.size() % ss == 0;
  std::vector<std::byte> bounce;
  std::span<std::byte> buf = out;
  if (!aligned) {
    bounce.resize((last - first) * ss);
    buf = bounce;
  }
  source_->read(geo_.data_offset + first * ss, buf);
  // dm-crypt: iv = 512-byte sector + iv_offset (>> sector_shift only with iv_large_sectors).
  std::uint64_t per = ss / 512;
  std::uint64_t iv =
      geo_.iv_large_sectors ? first + geo_.iv_offset / per : first * per + geo_.iv_offset;
  xts_->decrypt(buf, iv, geo_.iv_large_sectors ? 1 : per);
  if (!aligned) std::memcpy(out.data(), bounce.data() + (offset - first * ss), out.size());
}

}  // namespace coffer::reader
