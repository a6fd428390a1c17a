// The user-space reader against real dm-crypt: a vault made, filled by `coffer backup` and
// closed inside User-Mode Linux; then the reader's plaintext of the whole image must equal what
// dm-crypt shows, and `coffer image ls|restore` as nobody must give back the sources exactly.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <map>

#include "coffer/reader/image.hpp"
#include "coffer/util/fd.hpp"
#include "file_hash.hpp"
#include "run_coffer.hpp"
#include "vault_fixture.hpp"

using namespace coffer;
using namespace coffer::test;
namespace fs = std::filesystem;

namespace {

RunResult as_nobody(const std::vector<std::string>& args) {
  std::vector<std::string> argv{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                "--",      coffer_bin()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_process(argv);
}

// Every entry's type+mode, size, links, mtime in ns, content or link target.
std::map<std::string, std::string> describe(const fs::path& root) {
  std::map<std::string, std::string> out;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator();
       ++it) {
    std::string rel = it->path().lexically_relative(root).native();
    if (rel == "lost+found" || rel.rfind("lost+found/", 0) == 0) continue;
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) != 0) continue;
    std::string d = std::to_string(st.st_mode) + " " + std::to_string(st.st_nlink) + " " +
                    std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec);
    if (S_ISREG(st.st_mode)) d += " " + std::to_string(st.st_size) + " " + hash_file(it->path());
    if (S_ISLNK(st.st_mode)) d += " -> " + fs::read_symlink(it->path()).native();
    out[rel] = d;
  }
  return out;
}

config::Credentials key_creds(const fs::path& key) {
  std::ifstream in(key, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  config::Credentials c;
  c.key.emplace(bytes.size());
  std::memcpy(c.key->data(), bytes.data(), bytes.size());
  c.key_source = "key file " + key.native();
  return c;
}

}  // namespace

TEST(Reader, ClosedVaultReadsLikeDmCryptAndRestoresExactlyAsNobody) {
  VaultFixture v;
  v.create("96M");
  v.open_with_key();
  fs::path src = v.dir() / "A";
  write_sample_tree(src);
  ASSERT_EQ(::mkfifo((src / "fifo").c_str(), 0640), 0);
  ASSERT_EQ(::chmod((src / "plain.txt").c_str(), 04755), 0);
  timespec t[2] = {{1700000000, 123456789}, {1700000000, 987654321}};
  ASSERT_EQ(::utimensat(AT_FDCWD, (src / "big.bin").c_str(), t, 0), 0);
  RunResult r = v.coffer({"backup", src.native(), v.mount().native(), "--name", "a"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string older;
  for (const auto& e : fs::directory_iterator(v.mount() / "hosts" / "a"))
    if (e.path().filename().native()[0] == '2') older = e.path().filename();
  auto first = describe(src);
  ::sleep(1);  // snapshot names have one-second resolution
  write_text(src / "dir with space" / "later", "second night\n");
  r = v.coffer({"backup", src.native(), v.mount().native(), "--name", "a"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  v.close();

  // Block by block: the reader's plaintext equals what dm-crypt shows.
  fs::path plain = v.dir() / "plain.bin";
  run_checked({"cryptsetup", "open", "--readonly", "--key-file", v.key().native(),
               v.image().native(), "coffer-reader-test"},
              "map", v.image().native());
  RunResult dd = run_process(
      {"dd", "if=/dev/mapper/coffer-reader-test", "of=" + plain.native(), "bs=1M", "status=none"});
  run_checked({"cryptsetup", "close", "coffer-reader-test"}, "unmap", "coffer-reader-test");
  ASSERT_EQ(dd.exit_code, 0) << dd.err;
  {
    reader::Image img(v.image(), key_creds(v.key()));
    EXPECT_EQ(img.geometry().sector_size, 4096u);
    ASSERT_EQ(img.size(), fs::file_size(plain));
    UniqueFd pf = open_fd(plain, O_RDONLY);
    std::vector<std::byte> a(1 << 20), b(1 << 20);
    std::uint64_t differing = 0;
    for (std::uint64_t at = 0; at < img.size(); at += a.size()) {
      std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(a.size(), img.size() - at));
      img.read(at, {a.data(), n});
      ASSERT_EQ(pread_full(pf.get(), {b.data(), n}, static_cast<off_t>(at), plain), n);
      for (std::size_t blk = 0; blk < n; blk += 4096)
        if (std::memcmp(a.data() + blk, b.data() + blk, 4096) != 0) ++differing;
    }
    EXPECT_EQ(differing, 0u) << "4 KiB blocks where the reader and dm-crypt disagree";
  }

  // As nobody, without dm-crypt: ls and restore of the latest and the older snapshot.
  std::string before = hash_file(v.image());
  ::chmod(v.dir().c_str(), 0755);
  ::chmod(v.image().c_str(), 0644);
  fs::path key = v.dir() / "nobody.key";
  fs::copy_file(v.key(), key);
  ::chmod(key.c_str(), 0644);
  fs::path out = v.dir() / "out";
  fs::create_directory(out);
  // A tmpfs inside UML: on hostfs every new file belongs to the host user running UML (root),
  // so nobody could not enter the 0700 directories it has just made.
  run_checked({"mount", "-t", "tmpfs", "-o", "mode=0777", "tmpfs", out.native()}, "mount",
              out.native());
  struct Unmount {
    fs::path p;
    ~Unmount() { run_process({"umount", p.native()}); }
  } unmount{out};
  r = as_nobody({"image", "ls", v.image().native(), "latest", "-R", "--key-file", key.native()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("dir\\x20with\\x20space/later\n"), std::string::npos) << r.out;
  r = as_nobody({"image", "restore", v.image().native(), "latest", (out / "latest").native(),
                 "--key-file", key.native()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto want = describe(src), got = describe(out / "latest");
  // As nobody, set-id bits are kept only for one's own files: chmod still sets them (no owner
  // change happens), so the modes compare exactly.
  EXPECT_EQ(got, want);
  // (hostfs has no xattrs; tests/integration/reader checks them on a real file system.)
  r = as_nobody({"image", "restore", v.image().native(), "a/" + older, (out / "older").native(),
                 "--key-file", key.native()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(describe(out / "older"), first);
  write_text(v.dir() / "wrong", "not the passphrase\n");
  RunResult bad = as_nobody({"image", "ls", v.image().native(), "latest", "--passphrase-file",
                             (v.dir() / "wrong").native()});
  EXPECT_EQ(bad.exit_code, 12) << bad.err;
  EXPECT_EQ(hash_file(v.image()), before) << "the reader never writes the image";
}
