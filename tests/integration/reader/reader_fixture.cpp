#include "reader_fixture.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <libcryptsetup.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <fstream>

#include "coffer/util/fd.hpp"
#include "coffer/util/process.hpp"
#include "file_hash.hpp"
#include "run_coffer.hpp"
#include "temp_dir.hpp"

namespace coffer::test {
namespace fs = std::filesystem;
namespace {

constexpr std::uint64_t kSector = 4096;

std::vector<unsigned char> volume_key(const fs::path& image, const std::string& key) {
  crypt_device* cd = nullptr;
  EXPECT_EQ(crypt_init(&cd, image.c_str()), 0);
  EXPECT_EQ(crypt_load(cd, CRYPT_LUKS2, nullptr), 0);
  std::vector<unsigned char> vk(64);
  size_t size = vk.size();
  EXPECT_GE(crypt_volume_key_get(cd, CRYPT_ANY_SLOT, reinterpret_cast<char*>(vk.data()), &size,
                                 key.data(), key.size()),
            0);
  crypt_free(cd);
  vk.resize(size);
  return vk;
}

}  // namespace

void set_mtime(const fs::path& p, long sec, long nsec) {
  timespec t[2] = {{sec, nsec}, {sec, nsec}};
  ASSERT_EQ(::utimensat(AT_FDCWD, p.c_str(), t, AT_SYMLINK_NOFOLLOW), 0) << p;
}

void make_tree(const fs::path& t) {
  fs::create_directories(t / "dir with space" / "sub");
  write_text(t / "plain.txt", "hello\n");
  write_text(t / "dir with space" / "sub" / "n\xc3\xa9\nline\x01", "odd name\n", 0600);
  write_text(t / "exec.sh", "#!/bin/sh\n", 0750);
  ASSERT_EQ(::link((t / "plain.txt").c_str(), (t / "dir with space" / "hard").c_str()), 0);
  {
    UniqueFd f = open_fd(t / "sparse", O_WRONLY | O_CREAT, 0640);
    auto data = random_bytes(10000, 7);
    pwrite_all(f.get(), data, 1 << 20, t / "sparse");
    pwrite_all(f.get(), data, 9 << 20, t / "sparse");
    ASSERT_EQ(::ftruncate(f.get(), 12 << 20), 0);
  }
  fs::create_symlink("dir with space/sub", t / "link");
  ASSERT_EQ(::mkfifo((t / "fifo").c_str(), 0604), 0);
  ASSERT_EQ(::setxattr((t / "plain.txt").c_str(), "user.note", "v1", 2, 0), 0);
  set_mtime(t / "plain.txt", 1700000000, 123456789);
  set_mtime(t / "sparse", 1600000000, 5);
  set_mtime(t / "link", 1500000000, 0);
  set_mtime(t / "dir with space" / "sub", 1400000000, 999999999);
}

void encrypt_plain(const fs::path& plain, const fs::path& image) {
  std::vector<unsigned char> vk = volume_key(image, kImageKey);
  std::ifstream in(plain, std::ios::binary);
  UniqueFd out = open_fd(image, O_WRONLY);
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  ASSERT_EQ(EVP_EncryptInit_ex(ctx, EVP_aes_256_xts(), nullptr, vk.data(), nullptr), 1);
  std::vector<unsigned char> buf(kSector);
  for (std::uint64_t n = 0; in.read(reinterpret_cast<char*>(buf.data()), kSector); ++n) {
    unsigned char iv[16] = {};
    // dm-crypt's LUKS2 IV: the 512-byte sector number, 8 per 4 KiB sector.
    for (int i = 0; i < 8; ++i) iv[i] = static_cast<unsigned char>((n * 8) >> (8 * i));
    int len = 0;
    ASSERT_EQ(EVP_EncryptInit_ex(ctx, nullptr, nullptr, nullptr, iv), 1);
    ASSERT_EQ(EVP_EncryptUpdate(ctx, buf.data(), &len, buf.data(), kSector), 1);
    pwrite_all(out.get(), std::as_bytes(std::span(buf)),
               static_cast<off_t>(kImageHeader + n * kSector), image);
  }
  EVP_CIPHER_CTX_free(ctx);
}

void make_vault_image(const fs::path& content, const fs::path& plain, std::uint64_t fs_bytes,
                      const fs::path& image, const fs::path& key) {
  if (!content.empty()) {
    run_checked({"truncate", "-s", std::to_string(fs_bytes), plain.native()}, "make",
                plain.native());
    run_checked({"mkfs.ext4", "-q", "-F", "-b", "4096", "-I", "256", "-d", content.native(),
                 plain.native()},
                "mkfs", plain.native());
  }
  write_text(key, kImageKey, 0644);
  run_checked({"truncate", "-s", std::to_string(fs_bytes + kImageHeader), image.native()}, "make",
              image.native());
  run_checked({"cryptsetup",
               "luksFormat",
               "--batch-mode",
               "--type",
               "luks2",
               "--sector-size",
               "4096",
               "--cipher",
               "aes-xts-plain64",
               "--key-size",
               "512",
               "--pbkdf",
               "argon2id",
               "--pbkdf-memory",
               "4096",
               "--pbkdf-force-iterations",
               "4",
               "--pbkdf-parallel",
               "1",
               "--key-file",
               key.native(),
               image.native()},
              "luksFormat", image.native());
  encrypt_plain(plain, image);
  ::chmod(image.c_str(), 0644);
}

std::vector<std::string> as_user_argv(const std::vector<std::string>& args) {
  std::vector<std::string> argv;
  if (::geteuid() == 0)
    argv = {"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"};
  argv.push_back(coffer_bin());
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

}  // namespace coffer::test
