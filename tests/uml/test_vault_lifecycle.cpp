// Crashes, signals, idle stability, growing and key slots of a vault, through the real binary.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <csignal>
#include <nlohmann/json.hpp>

#include "coffer/util/fd.hpp"
#include "coffer/util/process.hpp"
#include "file_hash.hpp"
#include "run_coffer.hpp"
#include "vault_fixture.hpp"

using namespace coffer;
using namespace coffer::test;

namespace {

// Starts `coffer vault open` and sends `sig` the moment its dm-crypt mapping appears, i.e.
// while it is mounting. Returns the exit code of the killed process.
int signal_open_while_mounting(const VaultFixture& v, int sig) {
  std::string mapping = v.status()["mapping"];
  UniqueFd in(::inotify_init1(IN_CLOEXEC));
  EXPECT_GE(::inotify_add_watch(in.get(), "/dev/mapper", IN_CREATE), 0);
  SpawnOptions opts;
  opts.null_stdin = true;
  opts.pipe_stderr = true;
  opts.env_overrides = {"COFFER_RUNTIME_DIR=" + v.runtime().native()};
  Process open(
      {coffer_bin(), "vault", "open", v.image(), "--key-file", v.key(), "--mount", v.mount()},
      opts);
  alignas(inotify_event) char buf[4096];
  for (bool seen = false; !seen;) {
    pollfd p{in.get(), POLLIN, 0};
    if (::poll(&p, 1, 30000) <= 0) break;  // the assertion below reports it
    ssize_t n = ::read(in.get(), buf, sizeof buf);
    for (char* at = buf; n > 0 && at < buf + n;) {
      auto* ev = reinterpret_cast<inotify_event*>(at);
      if (ev->len && mapping == ev->name) seen = true;
      at += sizeof(inotify_event) + ev->len;
    }
  }
  open.kill(sig);
  return open.wait();
}

}  // namespace

TEST(VaultCrash, KillNineWhileMountingThenOpenRecovers) {
  VaultFixture v;
  v.create();
  v.open_with_key();
  write_sample_tree(v.mount() / "data");
  auto before = tree_digest(v.mount());
  v.close();

  int stale_seen = 0;
  for (int attempt = 0; attempt < 5; ++attempt) {
    int rc = signal_open_while_mounting(v, SIGKILL);
    EXPECT_EQ(rc, 128 + SIGKILL);
    nlohmann::json s = v.status();
    if (s["open"] == true) {
      // The open finished (its state written, the last step) before the kill arrived, which a
      // loaded machine allows: then it must be a whole, working open, not a half one.
      EXPECT_EQ(s["stale"], false);
      EXPECT_EQ(tree_digest(v.mount()), before);
      v.close();
      continue;
    }
    if (s["stale"] == true) ++stale_seen;
    RunResult r =
        v.coffer({"vault", "open", v.image(), "--key-file", v.key(), "--mount", v.mount()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(tree_digest(v.mount()), before);
    v.close();
    EXPECT_EQ(v.status()["mapped"], false);
  }
  EXPECT_GT(stale_seen, 0) << "the kill never landed between mapping and completed open (5 tries)";
}

TEST(VaultCrash, LeftoverMappingWithoutMountIsCleanedByOpenAndByClose) {
  VaultFixture v;
  v.create();
  // What a crash between unlock and mount leaves: the mapping, no mount, no state.
  v.open_with_key();
  ASSERT_EQ(::umount2(v.mount().c_str(), 0), 0);
  nlohmann::json s = v.status();
  EXPECT_EQ(s["mapped"], true);
  EXPECT_EQ(s["stale"], true);
  v.open_with_key();  // recovers
  EXPECT_EQ(v.status()["open"], true);
  ASSERT_EQ(::umount2(v.mount().c_str(), 0), 0);
  RunResult r = v.coffer({"vault", "close", v.image()});  // close cleans it too
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(v.status()["mapped"], false);
}

TEST(VaultCrash, SignalDuringOpenLeavesNothingBehindOrCompletes) {
  VaultFixture v;
  v.create();
  int rc = signal_open_while_mounting(v, SIGTERM);
  nlohmann::json s = v.status();
  if (rc == 130) {
    EXPECT_EQ(s["mapped"], false) << "an interrupted open left its mapping";
    EXPECT_FALSE(s["mounted_at"] != "") << "an interrupted open left its mount";
  } else {
    EXPECT_EQ(rc, 0);
    EXPECT_EQ(s["open"], true);
    v.close();
  }
}

TEST(VaultIdle, OpenAndCloseWithoutWritingChangesOnlyExt4Superblock) {
  VaultFixture v;
  v.create();
  v.open_with_key();
  write_sample_tree(v.mount() / "data");
  v.close();
  auto before = hash_blocks(v.image(), 4096);
  v.open_with_key();
  v.close();
  auto after = hash_blocks(v.image(), 4096);
  ASSERT_EQ(before.size(), after.size());
  std::vector<std::size_t> changed;
  for (std::size_t i = 0; i < before.size(); ++i)
    if (before[i] != after[i]) changed.push_back(i);
  std::string list;
  for (auto b : changed) list += " " + std::to_string(b);
  RecordProperty("changed_blocks", list);
  std::printf("idle open/close changed %zu of %zu 4 KiB blocks:%s\n", changed.size(), before.size(),
              list.c_str());
  // LUKS2 header (first 16 MiB = 4096 blocks) never changes on open/close.
  for (auto b : changed) EXPECT_GE(b, 4096u) << "LUKS header block " << b << " changed";
  // ext4 writes its superblock (mount count, mount and write times) and the journal
  // superblock on mount/unmount; nothing else (see docs/vault.md).
  EXPECT_LE(changed.size(), 4u) << list;
}

TEST(VaultGrow, KeepsEveryFileAndGrowsTheFileSystem) {
  VaultFixture v;
  v.create("96M");
  v.open_with_key();
  write_sample_tree(v.mount() / "data");
  auto before = tree_digest(v.mount());
  struct statvfs small {};
  ::statvfs(v.mount().c_str(), &small);
  v.close();
  RunResult r = v.coffer({"vault", "grow", v.image(), "--size", "256M", "--key-file", v.key()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(std::filesystem::file_size(v.image()), 256ull << 20);
  v.open_with_key();
  EXPECT_EQ(tree_digest(v.mount()), before);
  struct statvfs big {};
  ::statvfs(v.mount().c_str(), &big);
  EXPECT_GT(big.f_blocks * big.f_frsize, small.f_blocks * small.f_frsize + (150ull << 20));
  // Growing an open vault is refused, shrinking too.
  r = v.coffer({"vault", "grow", v.image(), "--size", "512M", "--key-file", v.key()});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  v.close();
  r = v.coffer({"vault", "grow", v.image(), "--size", "128M", "--key-file", v.key()});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(std::filesystem::file_size(v.image()), 256ull << 20);
}

TEST(VaultKeys, AddRemoveHeaderBackupAndNeverTheLastSlot) {
  VaultFixture v;
  v.create();
  write_text(v.dir() / "second", "second passphrase\n", 0600);
  std::vector<std::string> add{"vault",           "add-key", v.image(),
                               "--key-file",      v.key(),   "--new-passphrase-file",
                               v.dir() / "second"};
  add.insert(add.end(), kFastKdf.begin(), kFastKdf.end());
  RunResult r = v.coffer(add);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(v.status()["keyslots"].size(), 3u);
  r = v.coffer(
      {"vault", "open", v.image(), "--passphrase-file", v.dir() / "second", "--mount", v.mount()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  v.close();
  // Remove the slot the second passphrase opens; it no longer opens the vault.
  r = v.coffer({"vault", "remove-key", v.image(), "--passphrase-file", v.dir() / "second"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = v.coffer({"vault", "open", v.image(), "--passphrase-file", v.dir() / "second"});
  EXPECT_EQ(r.exit_code, 12) << r.err;
  // Remove the passphrase slot by number, authorised by the key file; then the key file's
  // own slot is the last one and must stay.
  r = v.coffer({"vault", "remove-key", v.image(), "--key-file", v.key(), "--slot", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string hash = hash_file(v.image());
  r = v.coffer({"vault", "remove-key", v.image(), "--key-file", v.key()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("last"), std::string::npos) << r.err;
  EXPECT_EQ(hash_file(v.image()), hash);

  r = v.coffer({"vault", "header-backup", v.image(), v.dir() / "header.bak"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(std::filesystem::file_size(v.dir() / "header.bak"), 16u << 20);
  std::string head = read_file(v.dir() / "header.bak").substr(0, 6);
  EXPECT_EQ(head, std::string("LUKS\xba\xbe", 6));
  r = v.coffer({"vault", "header-backup", v.image(), v.dir() / "header.bak"});
  EXPECT_EQ(r.exit_code, 1) << "must refuse to overwrite";
}
