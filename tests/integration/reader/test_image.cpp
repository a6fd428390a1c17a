// coffer image ls|restore on a closed LUKS2 image, run as an unprivileged user (setpriv), here
// on a kernel without device-mapper. The image holds a repository made by `coffer backup` and is
// made without dm-crypt (reader_fixture.hpp); `coffer image restore` is `coffer restore`.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <map>

#include "coffer/util/fd.hpp"
#include "coffer/util/process.hpp"
#include "file_hash.hpp"
#include "reader_fixture.hpp"
#include "run_coffer.hpp"
#include "temp_dir.hpp"

using namespace coffer;
using namespace coffer::test;
namespace fs = std::filesystem;

namespace {

struct Fixture {
  TempDir tmp;
  fs::path src, image, key;
  std::string snap;  // the snapshot's name (its UTC time)
  Fixture() {
    ::chmod(tmp.path().c_str(), 0755);  // the unprivileged run must reach the image and key
    src = tmp / "src";
    make_tree(src);
    fs::path stage = tmp / "stage";
    fs::create_directories(stage);
    RunResult b = run_coffer({"backup", src.native(), stage.native(), "--name", "a"});
    EXPECT_EQ(b.exit_code, 0) << b.err;
    for (const auto& e : fs::directory_iterator(stage / "hosts" / "a"))
      if (!e.is_symlink() && e.path().filename().native()[0] != '.') snap = e.path().filename();
    image = tmp / "vault.img";
    key = tmp / "vault.key";
    make_vault_image(stage, tmp / "plain.img", 48 << 20, image, key);
  }
};

RunResult as_user(const std::vector<std::string>& args) {
  return run_process(as_user_argv(args));
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
  r = as_user({"image", "ls", f.image.native(), "a/" + f.snap + ":dir with space", "-l",
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
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("not empty"), std::string::npos) << r.err;
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
