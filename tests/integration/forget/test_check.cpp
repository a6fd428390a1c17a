// coffer check: damage inside the vault is found, named with every snapshot sharing the inode,
// and exits 13; --read-data-subset K/T parts cover every file exactly once.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <set>

#include "forget_fixture.hpp"
#include "run_coffer.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;
using namespace coffer::test;

namespace {

struct Repo {
  TempDir t;
  std::vector<std::string> snaps;
  Repo() {
    fs::create_directories(t / "src");
    write_text(t / "src/shared", std::string(10000, 's'));
    fs::create_directories(t / "repo");
    for (int d = 1; d <= 3; ++d)
      snaps.push_back(make_snapshot(t / "src", t / "repo", "h", utc_time(2026, 6, d), 10));
  }
  fs::path file(int snap, const std::string& p) const {
    return t / "repo/hosts/h" / snaps[snap] / "tree" / p;
  }
  coffer::RunResult check(std::vector<std::string> extra = {}) const {
    std::vector<std::string> a{"--json", "check", (t / "repo").native()};
    a.insert(a.end(), extra.begin(), extra.end());
    return run_coffer(a);
  }
};

// Changes one byte in place and puts the mtime back: bit rot, which only reading can see.
void flip_byte(const fs::path& p, off_t at) {
  struct stat st {};
  ASSERT_EQ(::lstat(p.c_str(), &st), 0);
  int fd = ::open(p.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  char c = 0;
  ASSERT_EQ(::pread(fd, &c, 1, at), 1);
  c = static_cast<char>(c ^ 0x20);
  ASSERT_EQ(::pwrite(fd, &c, 1, at), 1);
  ::close(fd);
  timespec times[2] = {st.st_atim, st.st_mtim};
  ASSERT_EQ(::utimensat(AT_FDCWD, p.c_str(), times, AT_SYMLINK_NOFOLLOW), 0);
}

std::set<std::string> damaged_snapshots(const coffer::RunResult& r) {
  std::set<std::string> out;
  for (const auto& d : json_lines(r, "damage"))
    for (const auto& n : d["shared"])
      out.insert(n["snapshot"].get<std::string>() + ":" + n["path"].get<std::string>());
  return out;
}

}  // namespace

TEST(Check, AWholeRepositoryPasses) {
  Repo r;
  auto c = r.check({"--read-data"});
  ASSERT_EQ(c.exit_code, 0) << c.err << c.out;
  auto s = json_lines(c, "summary");
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0]["snapshots"], 3);
  EXPECT_EQ(s[0]["damaged"], 0);
  EXPECT_GT(s[0]["files_read"].get<int>(), 30);
}

TEST(Check, AFlippedByteIsFoundByReadingAndNamesEverySnapshotSharingIt) {
  Repo r;
  flip_byte(r.file(1, "shared"), 5000);
  auto structure = r.check();
  EXPECT_EQ(structure.exit_code, 0) << structure.out;  // the structure is intact
  auto c = r.check({"--read-data"});
  EXPECT_EQ(c.exit_code, 13) << c.err;
  EXPECT_EQ(damaged_snapshots(c),
            (std::set<std::string>{r.snaps[0] + ":shared", r.snaps[1] + ":shared",
                                   r.snaps[2] + ":shared"}));
  EXPECT_NE(c.out.find("BLAKE2b"), std::string::npos) << c.out;
  EXPECT_NE(c.err.find("damaged"), std::string::npos) << c.err;
  // Parts 1/3, 2/3, 3/3 read every file once between them; exactly one of them finds it.
  int found = 0, read = 0;
  for (const char* part : {"1/3", "2/3", "3/3"}) {
    auto p = r.check({"--read-data-subset", part});
    ASSERT_TRUE(p.exit_code == 0 || p.exit_code == 13) << p.err;
    found += p.exit_code == 13;
    read += json_lines(p, "summary").at(0)["files_read"].get<int>();
  }
  EXPECT_EQ(found, 1);
  EXPECT_EQ(read, json_lines(c, "summary").at(0)["files_read"].get<int>());
  EXPECT_EQ(r.check({"--read-data-subset", "0/3"}).exit_code, 2);
  EXPECT_EQ(r.check({"--read-data-subset", "150%"}).exit_code, 2);
}

TEST(Check, TruncatedMissingAndBrokenLinkCountsAreStructuralDamage) {
  Repo r;
  std::string one = r.snaps[0].substr(0, 10) + "/d3/f3";  // added by the first backup, in all three
  ASSERT_TRUE(fs::exists(r.file(2, one)));
  fs::resize_file(r.file(2, one), 3);
  auto c = r.check();
  EXPECT_EQ(c.exit_code, 13) << c.out;
  EXPECT_EQ(damaged_snapshots(c),
            (std::set<std::string>{r.snaps[0] + ":" + one, r.snaps[1] + ":" + one,
                                   r.snaps[2] + ":" + one}));

  Repo m;
  std::string two = m.snaps[1].substr(0, 10) + "/d1/f1";
  fs::remove(m.file(2, two));
  c = m.check();
  EXPECT_EQ(c.exit_code, 13);
  EXPECT_EQ(damaged_snapshots(c), (std::set<std::string>{m.snaps[2] + ":" + two}));
  EXPECT_NE(c.out.find("missing"), std::string::npos) << c.out;

  Repo l;
  fs::create_hard_link(l.file(0, "shared"), l.t / "outside-link");
  c = l.check();
  EXPECT_EQ(c.exit_code, 13);
  EXPECT_EQ(damaged_snapshots(c),
            (std::set<std::string>{l.snaps[0] + ":shared", l.snaps[1] + ":shared",
                                   l.snaps[2] + ":shared"}));
  EXPECT_NE(c.out.find("link count 4 but 3"), std::string::npos) << c.out;
}
