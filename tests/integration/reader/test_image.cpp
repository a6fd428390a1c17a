// coffer image ls|restore on a closed LUKS2 image, run as an unprivileged user (setpriv), here
// on a kernel without device-mapper. The image is made without dm-crypt: mkfs.ext4 -d fills a
// plain file system, `cryptsetup luksFormat` writes a real LUKS2 header (4 KiB sectors), and
// this test encrypts the file system with the header's volume key (AES-XTS-plain64, IV = 512-byte
// sector number, as dm-crypt does for LUKS2). That the IV scheme matches dm-crypt is shown inside
// UML by tests/uml/test_reader.cpp; here the point is the file system reader and the restore.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <libcryptsetup.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <fstream>
#include <map>

#include "coffer/util/fd.hpp"
#include "coffer/util/process.hpp"
#include "file_hash.hpp"
#include "run_coffer.hpp"
#include "temp_dir.hpp"

using namespace coffer;
using namespace coffer::test;
namespace fs = std::filesystem;

namespace {

constexpr std::uint64_t kHeader = 16 << 20, kSector = 4096;
const std::string kSnap = "2026-11-26T05-37-42Z";

void set_mtime(const fs::path& p, long sec, long nsec) {
  timespec t[2] = {{sec, nsec}, {sec, nsec}};
  ASSERT_EQ(::utimensat(AT_FDCWD, p.c_str(), t, AT_SYMLINK_NOFOLLOW), 0) << p;
}

// The source tree: odd names, a hard link pair, a sparse file, a symlink, a fifo, modes, xattr.
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

// Volume key of the header (what the reader also unlocks, here through libcryptsetup itself).
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

void encrypt_into(const fs::path& plain, const fs::path& image,
                  const std::vector<unsigned char>& vk) {
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
    pwrite_all(out.get(), std::as_bytes(std::span(buf)), static_cast<off_t>(kHeader + n * kSector),
               image);
  }
  EVP_CIPHER_CTX_free(ctx);
}

struct Fixture {
  TempDir tmp;
  fs::path src, image, key;
  Fixture() {
    ::chmod(tmp.path().c_str(), 0755);  // the unprivileged run must reach the image and key
    fs::path stage = tmp / "stage";
    src = stage / "hosts" / "a" / kSnap / "tree";
    make_tree(src);
    write_text(stage / "hosts" / "a" / kSnap / "catalog", "");
    write_text(stage / "hosts" / "a" / kSnap / "complete", "{}\n");
    fs::create_symlink(kSnap, stage / "hosts" / "a" / "latest");
    fs::path plain = tmp / "plain.img";
    run_checked({"truncate", "-s", "48M", plain.native()}, "make", "plain.img");
    run_checked(
        {"mkfs.ext4", "-q", "-F", "-b", "4096", "-I", "256", "-d", stage.native(), plain.native()},
        "mkfs", "plain.img");
    image = tmp / "vault.img";
    key = tmp / "vault.key";
    write_text(key, "0123456789abcdef0123456789abcdef", 0644);
    run_checked({"truncate", "-s", "64M", image.native()}, "make", "vault.img");
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
                "luksFormat", "vault.img");
    encrypt_into(plain, image, volume_key(image, "0123456789abcdef0123456789abcdef"));
    ::chmod(image.c_str(), 0644);
  }
};

// Runs coffer as nobody when this test runs as root (it does on CI), else as the current user.
RunResult as_user(const std::vector<std::string>& args) {
  std::vector<std::string> argv;
  if (::geteuid() == 0)
    argv = {"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"};
  argv.push_back(coffer_bin());
  argv.insert(argv.end(), args.begin(), args.end());
  return run_process(argv);
}

}  // namespace

TEST(ImageReader, LsListsTheLatestSnapshotAsNobody) {
  Fixture f;
  RunResult r =
      as_user({"image", "ls", f.image.native(), "latest", "-R", "--key-file", f.key.native()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("plain.txt\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("dir\\x20with\\x20space/\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("link -> dir\\x20with\\x20space/sub\n"), std::string::npos) << r.out;
  r = as_user({"image", "ls", f.image.native(), "a/" + kSnap + ":dir with space", "-l",
               "--key-file", f.key.native()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("-rw-r--r--   2"), std::string::npos) << r.out;  // the hard link
  EXPECT_NE(r.out.find("hard"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("plain.txt"), std::string::npos) << r.out;
}

TEST(ImageReader, RestoreAsNobodyIsExactAndNeverWritesTheImage) {
  Fixture f;
  std::string before = hash_file(f.image);
  fs::path out = f.tmp / "out";
  fs::create_directory(out);
  ::chmod(out.c_str(), 0777);
  RunResult r = as_user({"image", "restore", f.image.native(), "latest", (out / "r").native(),
                         "--key-file", f.key.native()});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_EQ(hash_file(f.image), before);
  fs::path got = out / "r";
  std::map<std::string, int> seen;
  for (auto it = fs::recursive_directory_iterator(f.src); it != fs::recursive_directory_iterator();
       ++it) {
    fs::path rel = it->path().lexically_relative(f.src);
    struct stat a {
    }, b{};
    ASSERT_EQ(::lstat(it->path().c_str(), &a), 0);
    ASSERT_EQ(::lstat((got / rel).c_str(), &b), 0) << rel;
    EXPECT_EQ(a.st_mode, b.st_mode) << rel;
    EXPECT_EQ(a.st_size, b.st_size) << rel;
    EXPECT_EQ(a.st_nlink, b.st_nlink) << rel;
    EXPECT_EQ(a.st_mtim.tv_sec, b.st_mtim.tv_sec) << rel;
    // mkfs.ext4 -d stores whole seconds only; nanoseconds are checked on a kernel-written
    // file system in tests/uml/test_reader.cpp.
    if (S_ISREG(a.st_mode)) {
      EXPECT_EQ(hash_file(it->path()), hash_file(got / rel)) << rel;
    }
    if (S_ISLNK(a.st_mode)) {
      EXPECT_EQ(fs::read_symlink(it->path()), fs::read_symlink(got / rel)) << rel;
    }
    ++seen[rel.native()];
  }
  EXPECT_EQ(seen.size(), 9u);
  struct stat p {
  }, h{}, s{};
  ASSERT_EQ(::stat((got / "plain.txt").c_str(), &p), 0);
  ASSERT_EQ(::stat((got / "dir with space" / "hard").c_str(), &h), 0);
  EXPECT_EQ(p.st_ino, h.st_ino) << "hard link restored as a link";
  ASSERT_EQ(::stat((got / "sparse").c_str(), &s), 0);
  EXPECT_LT(s.st_blocks * 512, 1 << 20) << "holes stay holes";
  char v[8] = {};
  EXPECT_EQ(::getxattr((got / "plain.txt").c_str(), "user.note", v, sizeof v), 2);
  EXPECT_EQ(std::string(v), "v1");
  struct stat o {};
  ASSERT_EQ(::stat(got.c_str(), &o), 0);
  if (::geteuid() == 0) {
    EXPECT_EQ(o.st_uid, 65534u) << "restored by the unprivileged user";
  }
}

TEST(ImageReader, RestoreOnePathAndRefuseAnExistingTarget) {
  Fixture f;
  fs::path out = f.tmp / "one";
  RunResult r = run_coffer({"image", "restore", f.image.native(), "latest:dir with space/sub",
                            out.native(), "--key-file", f.key.native()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::is_regular_file(out / "n\xc3\xa9\nline\x01"));
  r = run_coffer(
      {"image", "restore", f.image.native(), "latest", out.native(), "--key-file", f.key.native()});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
}

TEST(ImageReader, WrongKeyExits12AndMissingSnapshotExits10) {
  Fixture f;
  write_text(f.tmp / "wrong.key", "not the key");
  std::string before = hash_file(f.image);
  RunResult r = run_coffer(
      {"image", "ls", f.image.native(), "latest", "--key-file", (f.tmp / "wrong.key").native()});
  EXPECT_EQ(r.exit_code, 12) << r.err;
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_EQ(hash_file(f.image), before);
  r = run_coffer(
      {"image", "ls", f.image.native(), "2020-01-01T00-00-00Z", "--key-file", f.key.native()});
  EXPECT_EQ(r.exit_code, 10) << r.err;
  r = run_coffer(
      {"image", "ls", (f.tmp / "plain.img").native(), "latest", "--key-file", f.key.native()});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("LUKS2"), std::string::npos) << r.err;
}

// `replica fetch --restore`: B's image replicated to C, then fetched back with the key only and
// a path of the latest snapshot restored from the fetched image by the reader, in one command.
TEST(ImageReader, ReplicaFetchRestoresFromTheFetchedImageInOneStep) {
  Fixture f;
  std::vector<std::string> bare = {"COFFER_RUNTIME_DIR=" + (f.tmp / "no-run").native(),
                                   "COFFER_CONFIG="};
  fs::path C = f.tmp / "C", out = f.tmp / "fetched.img", target = f.tmp / "back";
  ASSERT_EQ(run_coffer({"replicate", f.image.native(), C.native(), "--key-file", f.key.native()},
                       {}, bare)
                .exit_code,
            0);
  fs::create_directory(target);
  RunResult refused = run_coffer({"replica", "fetch", C.native(), out.native(), "--key-file",
                                  f.key.native(), "--restore", "latest", target.native()},
                                 {}, bare);
  EXPECT_EQ(refused.exit_code, 2) << "an existing TARGET is refused: " << refused.err;
  EXPECT_FALSE(fs::exists(out)) << "before anything is downloaded";
  fs::remove(target);
  RunResult r = run_coffer({"replica", "fetch", "--json", C.native(), out.native(), "--key-file",
                            f.key.native(), "--restore", "latest:dir with space", target.native()},
                           {}, bare);
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_NE(r.out.find("\"type\":\"fetched\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"type\":\"restored\""), std::string::npos) << r.out;
  EXPECT_EQ(hash_file(out), hash_file(f.image));
  EXPECT_EQ(hash_file(target / "hard"), hash_file(f.src / "plain.txt"));
  EXPECT_EQ(hash_file(target / "sub" / "n\xc3\xa9\nline\x01"),
            hash_file(f.src / "dir with space" / "sub" / "n\xc3\xa9\nline\x01"));
  EXPECT_FALSE(fs::exists(target / "plain.txt")) << "only the path asked for";
}
