// Links planted in C's directory: `replica-serve` never follows one out of DIR (a `lock` link
// used to truncate its target), says which name is a link, and works again once it is gone.
// Also C's own image given as the source.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "file_hash.hpp"
#include "replica_fixture.hpp"
#include "run_coffer.hpp"

namespace fs = std::filesystem;

namespace coffer::test {
namespace {

using ReplicaSymlinks = ReplicaTest;

struct Victim {
  fs::path path;
  std::string hash;
  timespec mtime{};
};

Victim make_victim(const fs::path& path, const fs::path& copy_of) {
  if (fs::exists(copy_of))
    fs::copy_file(copy_of, path);
  else
    write_text(path, "a file outside the replica that must survive\n", 0600);
  struct stat st {};
  ::stat(path.c_str(), &st);
  return {path, hash_file(path), st.st_mtim};
}

void expect_untouched(const Victim& v, const std::string& context) {
  EXPECT_EQ(hash_file(v.path), v.hash) << context;
  struct stat st {};
  ASSERT_EQ(::stat(v.path.c_str(), &st), 0) << context;
  EXPECT_EQ(st.st_mtim.tv_sec, v.mtime.tv_sec) << context;
  EXPECT_EQ(st.st_mtim.tv_nsec, v.mtime.tv_nsec) << context;
}

void expect_named_link(const RunResult& r, const fs::path& link, const std::string& context) {
  EXPECT_NE(r.exit_code, 0) << context;
  EXPECT_NE(r.exit_code, 13) << "a link is not an integrity failure: " << context << "\n" << r.err;
  EXPECT_NE(r.err.find(link.native() + ": it is a symbolic link"), std::string::npos)
      << context << "\n"
      << r.err;
  EXPECT_EQ(r.err.find("truncated"), std::string::npos) << context << "\n" << r.err;
}

// Every fixed name the helper opens, creates or renames onto (docs/formats/journal.md).
const std::vector<std::string> kNames = {"lock",    "image",           "manifest",
                                         "journal", "journal.partial", "coffer-replica"};

TEST_F(ReplicaSymlinks, EveryNameInAReplicaIsRefusedAndItsTargetUntouched) {
  replicate();
  for (const auto& name : kNames) {
    SCOPED_TRACE(name);
    write_random(vault.image, kLuksHeader + 2 * kMiB, 65536,
                 40 + static_cast<unsigned>(name.size()));
    fs::path link = C / name, aside = tmp / ("aside-" + name);
    bool existed = fs::exists(link);
    if (existed) fs::rename(link, aside);
    // A copy of the real file where there is one: following the link would even "work".
    Victim victim = make_victim(tmp / ("victim-" + name), aside);
    fs::create_symlink(victim.path, link);

    RunResult r =
        run({"replicate", vault.image.native(), C.native(), "--key-file", vault.key.native()});
    expect_named_link(r, link, "replicate");
    expect_named_link(run({"replica", "status", vault.image.native(), C.native()}), link, "status");
    expect_named_link(verify(), link, "verify");
    expect_untouched(victim, name);
    EXPECT_TRUE(fs::is_symlink(fs::symlink_status(link))) << "the link itself is left alone";

    fs::remove(link);
    if (existed) fs::rename(aside, link);
    replicate();
    EXPECT_EQ(hash_file(C / "image"), hash_file(vault.image)) << "works again without the link";
    expect_untouched(victim, name + " after the next run");
  }
  EXPECT_EQ(verify().exit_code, 0);
}

TEST_F(ReplicaSymlinks, DanglingLinksCreateNothingOutside) {
  replicate();
  write_random(vault.image, kLuksHeader + 5 * kMiB, 65536, 77);
  for (const auto& name : kNames) {
    SCOPED_TRACE(name);
    fs::path link = C / name, aside = tmp / ("aside-" + name), target = tmp / ("created-" + name);
    bool existed = fs::exists(link);
    if (existed) fs::rename(link, aside);
    fs::create_symlink(target, link);
    RunResult r =
        run({"replicate", vault.image.native(), C.native(), "--key-file", vault.key.native()});
    expect_named_link(r, link, "replicate");
    EXPECT_FALSE(fs::exists(target)) << "a file was created through the link";
    fs::remove(link);
    if (existed) fs::rename(aside, link);
  }
  replicate();
  EXPECT_EQ(hash_file(C / "image"), hash_file(vault.image));
}

TEST_F(ReplicaSymlinks, AFreshDirectoryWithALinkIsNotMadeAReplica) {
  for (const auto& name : kNames) {
    SCOPED_TRACE(name);
    fs::remove_all(C);
    fs::create_directories(C);
    Victim victim = make_victim(tmp / ("victim-" + name), {});
    fs::create_symlink(victim.path, C / name);
    RunResult r =
        run({"replicate", vault.image.native(), C.native(), "--key-file", vault.key.native()});
    expect_named_link(r, C / name, "replicate");
    expect_untouched(victim, name);
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(C)) names.push_back(e.path().filename());
    EXPECT_EQ(names, std::vector<std::string>{name}) << "nothing was written there";
    fs::remove(victim.path);
  }
}

TEST_F(ReplicaSymlinks, StaleTemporaryLinksAreRemovedNotFollowed) {
  replicate();
  Victim victim = make_victim(tmp / "victim", {});
  fs::create_symlink(victim.path, C / "manifest.tmp.AAAAAA");
  fs::create_symlink(victim.path, C / "coffer-replica.tmp.BBBBBB");
  write_random(vault.image, kLuksHeader + 3 * kMiB, 65536, 78);
  replicate();
  EXPECT_FALSE(fs::exists(fs::symlink_status(C / "manifest.tmp.AAAAAA")));
  EXPECT_FALSE(fs::exists(fs::symlink_status(C / "coffer-replica.tmp.BBBBBB")));
  expect_untouched(victim, "temporaries");
  EXPECT_EQ(hash_file(C / "image"), hash_file(vault.image));
}

TEST_F(ReplicaSymlinks, TheReplicasOwnImageIsNotASource) {
  replicate();
  std::string image = hash_file(C / "image"), manifest = hash_file(C / "manifest");
  fs::create_symlink(C / "image", tmp / "alias.img");
  fs::create_hard_link(C / "image", tmp / "hardlink.img");
  for (const fs::path& source : {C / "image", tmp / "alias.img", tmp / "hardlink.img"}) {
    SCOPED_TRACE(source.native());
    RunResult r = run({"replicate", source.native(), C.native(), "--key-file", vault.key.native()});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("replicate B's vault image, not C's copy of it"), std::string::npos)
        << r.err;
    EXPECT_EQ(count_lines(r.err), 1) << r.err;
  }
  EXPECT_EQ(hash_file(C / "image"), image);
  EXPECT_EQ(hash_file(C / "manifest"), manifest);
  EXPECT_FALSE(fs::exists(C / "image.coffer")) << "no state was made for it";
  EXPECT_EQ(verify().exit_code, 0);
}

}  // namespace
}  // namespace coffer::test
