// A closed vault image and a replica of it on C as REPO of `coffer restore`, `ls`, `find` and
// `diff`: the restore options hold (one restorer for every source), and a restore from C fetches
// only the blocks the path needs, each checked against the MAC'd manifest. The image holds a
// repository made by `coffer backup` (two snapshots) plus ~100 MiB of filler, in a 320 MiB
// file system; C is made by `coffer replicate`, locally and over the real sshd on loopback.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <regex>

#include "coffer/util/fd.hpp"
#include "coffer/util/process.hpp"
#include "file_hash.hpp"
#include "reader_fixture.hpp"
#include "replica_fixture.hpp"
#include "restore_support.hpp"
#include "run_coffer.hpp"
#include "sshd.hpp"
#include "temp_dir.hpp"
#include "tree_compare.hpp"

namespace coffer::test {
namespace {
namespace fs = std::filesystem;

[[maybe_unused]] auto* const sshd_env = ::testing::AddGlobalTestEnvironment(new SshdEnvironment);

std::string join_lines(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += s + "\n";
  return out;
}

// Built once for the whole binary: sources, repository, image, replica.
struct World {
  TempDir tmp;
  fs::path src1, src2, repo, plain, image, key, C;
  std::string snap1, snap2;
  std::vector<std::string> env;

  World() {
    ::chmod(tmp.path().c_str(), 0755);
    src2 = tmp / "src";
    make_tree(src2);
    for (const char* d : {"big", "sub", "filler"}) fs::create_directories(src2 / d);
    write_random(src2 / "big" / "one.bin", 0, kMiB, 11);
    for (int i = 0; i < 8; ++i)
      write_random(src2 / "sub" / ("f" + std::to_string(i)), 0, 256 << 10, 20 + i);
    for (int i = 0; i < 6; ++i)
      write_random(src2 / "filler" / ("x" + std::to_string(i)), 0, 16 * kMiB, 40 + i);
    repo = tmp / "repo";
    src1 = tmp / "src-first";
    run_checked({"cp", "-a", src2.native(), src1.native()}, "copy", src1.native());
    snap1 = backup(src2, repo, "a");
    write_text(src2 / "plain.txt", "changed\n");
    write_text(src2 / "new file", "new\n");
    snap2 = backup(src2, repo, "a");
    plain = tmp / "plain.img";
    image = tmp / "vault.img";
    key = tmp / "vault.key";
    make_vault_image(repo, plain, 320 * kMiB, image, key);
    C = tmp / "C";
    env = {"COFFER_RUNTIME_DIR=" + (tmp / "run").native(), "COFFER_CONFIG="};
    RunResult r = run_coffer(
        {"replicate", "--json", image.native(), C.native(), "--key-file", key.native()}, {}, env);
    EXPECT_EQ(r.exit_code, 0) << r.err;
  }

  RunResult coffer(std::vector<std::string> a) const {
    a.insert(a.end(), {"--key-file", key.native()});
    return run_coffer(a, {}, env);
  }
  // Physical byte offset in the image file of ext4 block `n` of `path` in the snapshot's tree.
  std::uint64_t data_offset(const std::string& path, std::uint64_t n = 0) const {
    std::string out = debugfs("bmap " + tree(path) + " " + std::to_string(n));
    return kImageHeader + std::stoull(out) * 4096;
  }
  // Offset of the inode-table block holding `path`'s inode.
  std::uint64_t inode_offset(const std::string& path) const {
    std::string out = debugfs("imap " + tree(path));
    std::smatch m;
    EXPECT_TRUE(std::regex_search(out, m, std::regex("located at block ([0-9]+)"))) << out;
    return kImageHeader + std::stoull(m[1]) * 4096;
  }
  std::string tree(const std::string& path) const { return "/hosts/a/" + snap2 + "/tree/" + path; }
  std::string debugfs(const std::string& request) const {
    RunResult r = run_process({"debugfs", "-R", request, plain.native()});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out;
  }
};

World& world() {
  static World* w = new World;
  return *w;
}

std::uint64_t fetched_bytes(const RunResult& r) {
  nlohmann::json j = last_json(r.out, "fetched");
  EXPECT_FALSE(j.is_null()) << r.out << r.err;
  return j.is_null() ? ~0ull : j["bytes"].get<std::uint64_t>();
}

// A byte of a file changed for the life of the object, then put back.
class Tamper {
 public:
  Tamper(fs::path file, std::uint64_t offset) : file_(std::move(file)), offset_(offset) {
    UniqueFd fd = open_fd(file_, O_RDWR);
    EXPECT_EQ(::pread(fd.get(), &old_, 1, static_cast<off_t>(offset_)), 1);
    char flipped = static_cast<char>(old_ ^ 0x5a);
    EXPECT_EQ(::pwrite(fd.get(), &flipped, 1, static_cast<off_t>(offset_)), 1);
  }
  ~Tamper() {
    UniqueFd fd = open_fd(file_, O_RDWR);
    EXPECT_EQ(::pwrite(fd.get(), &old_, 1, static_cast<off_t>(offset_)), 1);
  }

 private:
  fs::path file_;
  std::uint64_t offset_;
  char old_ = 0;
};

TEST(ImageSource, RestoreOfLatestAndOlderSnapshotIsExact) {
  World& w = world();
  TempDir t;
  RunResult r = w.coffer({"restore", w.image.native(), "latest", (t / "new").native(), "--verify"});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_NE(r.out.find("files verified"), std::string::npos) << r.out;
  CompareOptions o;
  o.owners = ::geteuid() == 0;
  auto diffs = compare_trees(w.src2, t / "new", o);
  EXPECT_TRUE(diffs.empty()) << join_lines(diffs);
  EXPECT_EQ(rsync_changes(w.src2, t / "new"), "");
  r = w.coffer({"restore", w.image.native(), "a/" + w.snap1, (t / "old").native()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  diffs = compare_trees(w.src1, t / "old", o);
  EXPECT_TRUE(diffs.empty()) << join_lines(diffs);
}

TEST(ImageSource, RestoreOptionsHold) {
  World& w = world();
  TempDir t;
  fs::path out = t / "out";
  // Filters, and --dry-run writes nothing.
  RunResult r = w.coffer({"restore", w.image.native(), "latest", out.native(), "--exclude",
                          "filler", "--exclude", "sparse", "-n"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(fs::exists(out));
  EXPECT_NE(r.out.find("would restore"), std::string::npos) << r.out;
  r = w.coffer({"restore", w.image.native(), "latest", out.native(), "--exclude", "filler",
                "--exclude", "sparse"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(fs::exists(out / "filler"));
  EXPECT_FALSE(fs::exists(out / "sparse"));
  EXPECT_EQ(hash_file(out / "big" / "one.bin"), hash_file(w.src2 / "big" / "one.bin"));
  // A non-empty TARGET is refused without --overwrite; --delete removes what the snapshot lacks.
  write_text(out / "extra", "not in the snapshot\n");
  write_text(out / "plain.txt", "edited\n");
  r = w.coffer({"restore", w.image.native(), "latest", out.native(), "--exclude", "filler"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("not empty"), std::string::npos) << r.err;
  r = w.coffer({"restore", w.image.native(), "latest", out.native(), "--exclude", "filler",
                "--overwrite", "if-changed", "--delete", "-v"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(fs::exists(out / "extra"));
  EXPECT_EQ(read_file(out / "plain.txt"), "changed\n");
  EXPECT_NE(r.out.find("updated   plain.txt"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("unchanged big/one.bin"), std::string::npos) << r.out;
  for (const auto& name : entries_of(out))
    EXPECT_EQ(name.find(".coffer-restore"), std::string::npos);
}

TEST(ImageSource, LsFindDiffReadTheImagesCatalogs) {
  World& w = world();
  RunResult r = w.coffer({"ls", w.image.native(), "latest:sub"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(lines_containing(r.out, "sub/f"), 8) << r.out;
  r = w.coffer({"find", w.image.native(), "one.bin"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(lines_containing(r.out, "big/one.bin"), 2) << r.out;  // in both snapshots
  r = w.coffer({"diff", w.image.native(), w.snap1, w.snap2});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("+ new\\x20file"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("M plain.txt"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("1 added, 0 removed"), std::string::npos) << r.out;
}

TEST(ReplicaSource, OneFileFromALocalReplicaFetchesLittle) {
  World& w = world();
  TempDir t;
  RunResult r =
      w.coffer({"--json", "restore", w.C.native(), "latest:big/one.bin", (t / "one").native()});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_EQ(hash_file(t / "one" / "one.bin"), hash_file(w.src2 / "big" / "one.bin"));
  std::uint64_t bytes = fetched_bytes(r);
  EXPECT_LE(bytes, 4 * kMiB);
  EXPECT_GE(bytes, kMiB);
  std::cout << "one 1 MiB file: " << bytes << " bytes fetched\n";
}

TEST(ReplicaSource, SubTreeFetchesAtMostOneAndAHalfItsSizePlusMetadata) {
  World& w = world();
  TempDir t;
  // The metadata a path costs (header, superblock, descriptors, directories, inode blocks,
  // catalog): what a tiny file needs.
  RunResult r =
      w.coffer({"--json", "restore", w.C.native(), "latest:plain.txt", (t / "tiny").native()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::uint64_t metadata = fetched_bytes(r);
  r = w.coffer({"--json", "restore", w.C.native(), "latest:sub", (t / "sub").native()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto diffs = compare_trees(w.src2 / "sub", t / "sub", {.owners = ::geteuid() == 0});
  EXPECT_TRUE(diffs.empty()) << join_lines(diffs);
  std::uint64_t bytes = fetched_bytes(r);
  const std::uint64_t size = 8 * (256 << 10);
  // The sub-tree's own directory and inode blocks: a few 64 KiB blocks more than a file's.
  EXPECT_LE(bytes, size * 3 / 2 + metadata + 4 * 65536) << "metadata " << metadata;
  std::cout << "metadata " << metadata << " bytes; sub-tree of " << size << " bytes: " << bytes
            << " bytes fetched\n";
}

TEST(ReplicaSource, OverSshRestoresOneFileFromC) {
  World& w = world();
  TempDir t;
  std::vector<std::string> env = w.env;
  for (const auto& e : SshdEnvironment::sshd().env()) env.push_back(e);
  std::string source = SshdEnvironment::sshd().alias() + ":" + w.C.native();
  RunResult r = run_coffer({"--json", "restore", source, "latest:big/one.bin", (t / "one").native(),
                            "--key-file", w.key.native(), "--remote-command", coffer_bin()},
                           {}, env);
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_EQ(hash_file(t / "one" / "one.bin"), hash_file(w.src2 / "big" / "one.bin"));
  EXPECT_LE(fetched_bytes(r), 4 * kMiB);
  r = run_coffer(
      {"ls", source, "latest:big", "--key-file", w.key.native(), "--remote-command", coffer_bin()},
      {}, env);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("big/one.bin"), std::string::npos) << r.out;
}

void expect_refused(const RunResult& r, const fs::path& out) {
  EXPECT_EQ(r.exit_code, 13) << r.err << r.out;
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_FALSE(fs::exists(out / "one.bin")) << "nothing restored from a bad block";
}

TEST(ReplicaSource, TamperingOnCExits13AndRestoresNothingFromTheBadBlock) {
  World& w = world();
  TempDir t;
  {
    Tamper bad(w.C / "image", w.data_offset("big/one.bin", 100));
    RunResult r = w.coffer({"restore", w.C.native(), "latest:big/one.bin", (t / "data").native()});
    expect_refused(r, t / "data");
    EXPECT_NE(r.err.find("offset"), std::string::npos) << r.err;
  }
  {
    Tamper bad(w.C / "image", w.inode_offset("big/one.bin") + 100);
    RunResult r = w.coffer({"restore", w.C.native(), "latest:big/one.bin", (t / "inode").native()});
    expect_refused(r, t / "inode");
  }
  {
    Tamper bad(w.C / "manifest", 128 + 32 * 300 + 5);  // an entry of the block list
    RunResult r =
        w.coffer({"restore", w.C.native(), "latest:big/one.bin", (t / "manifest").native()});
    expect_refused(r, t / "manifest");
    EXPECT_NE(r.err.find("manifest"), std::string::npos) << r.err;
  }
  // Put back, C reads again.
  RunResult r = w.coffer({"restore", w.C.native(), "latest:big/one.bin", (t / "ok").native()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

// The reader never guesses: a file system that needs journal recovery, or has a feature
// libext2fs does not know, is refused with the way out.
TEST(ImageSource, RefusesJournalRecoveryAndUnknownFeatures) {
  TempDir t;
  ::chmod(t.path().c_str(), 0755);
  make_tree(t / "src");
  fs::path repo = t / "repo";
  backup(t / "src", repo, "a");
  fs::path plain = t / "plain.img";
  run_checked({"truncate", "-s", "32M", plain.native()}, "make", plain.native());
  run_checked({"mkfs.ext4", "-q", "-F", "-b", "4096", "-d", repo.native(), plain.native()}, "mkfs",
              plain.native());
  run_checked({"debugfs", "-w", "-R", "feature needs_recovery", plain.native()}, "debugfs",
              plain.native());
  make_vault_image({}, plain, 32 * kMiB, t / "journal.img", t / "k");
  RunResult r = run_coffer({"restore", (t / "journal.img").native(), "latest", (t / "o1").native(),
                            "--key-file", (t / "k").native()});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("journal recovery"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("coffer vault open"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(t / "o1"));
  run_checked({"debugfs", "-w", "-R", "feature -needs_recovery dirdata", plain.native()}, "debugfs",
              plain.native());
  make_vault_image({}, plain, 32 * kMiB, t / "feature.img", t / "k");
  r = run_coffer({"ls", (t / "feature.img").native(), "latest", "--key-file", (t / "k").native()});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("does not support"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("coffer vault open"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace coffer::test
