// Clear errors, and nothing on C damaged: a DEST that is not a replica, a wrong key, a replica
// that disappeared, a full disk on C, a replica in use; and B losing its own state.
#include <gtest/gtest.h>
#include <sys/mount.h>

#include "coffer/util/lock.hpp"
#include "file_hash.hpp"
#include "replica_fixture.hpp"

namespace coffer::test {
namespace {

using ReplicaRefusals = ReplicaTest;

TEST_F(ReplicaRefusals, DestinationThatIsNotAReplica) {
  write_text(C / "notes.txt", "precious\n");
  RunResult r =
      run({"replicate", vault.image.native(), C.native(), "--key-file", vault.key.native()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("not a coffer replica: it holds other files: notes.txt"), std::string::npos)
      << r.err;
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(C)) names.push_back(e.path().filename());
  EXPECT_EQ(names, std::vector<std::string>{"notes.txt"}) << "nothing was written there";
  EXPECT_EQ(read_file(C / "notes.txt"), "precious\n");
  EXPECT_EQ(status()["exit_code"], 10);
  EXPECT_EQ(verify().exit_code, 10);
  EXPECT_EQ(run({"replica", "status", vault.image.native(), (tmp / "nothing").native()}).exit_code,
            10);
}

TEST_F(ReplicaRefusals, WrongKey) {
  replicate();
  std::string before = hash_file(C / "image"), manifest = hash_file(C / "manifest");
  write_random(tmp / "wrong.key", 0, 64, 555);
  write_random(vault.image, kLuksHeader, 8 * kMiB, 3);
  // Paced to 8 s of upload: the wrong key must stop it when the key derivation (milliseconds
  // here) ends, not after everything was sent.
  RunResult r = run({"replicate", vault.image.native(), C.native(), "--key-file",
                     (tmp / "wrong.key").native(), "--limit-rate", "1M"});
  EXPECT_EQ(r.exit_code, 12) << r.err;
  EXPECT_LT(status()["partial_bytes"].get<std::uint64_t>(), 4 * kMiB);
  EXPECT_EQ(hash_file(C / "image"), before);
  EXPECT_EQ(hash_file(C / "manifest"), manifest);
  EXPECT_EQ(status()["b_record"]["generation"], 1) << "nothing was committed";
  // Whatever the upload sent while the key was being unlocked is a partial journal that the
  // next run, with the right key, resumes or replaces.
  nlohmann::json j = replicate();
  EXPECT_EQ(j["generation"], 2);
  EXPECT_EQ(hash_file(C / "image"), hash_file(vault.image));
  EXPECT_EQ(verify().exit_code, 0);
}

TEST_F(ReplicaRefusals, ReplicaThatDisappeared) {
  replicate();
  std::filesystem::remove_all(C);
  RunResult r =
      run({"replicate", vault.image.native(), C.native(), "--key-file", vault.key.native()});
  EXPECT_EQ(r.exit_code, 10) << r.err;
  EXPECT_NE(r.err.find("B committed generation 1"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--reseed"), std::string::npos) << r.err;
  nlohmann::json j = replicate({"--reseed"});
  EXPECT_EQ(j["generation"], 1);
  EXPECT_EQ(hash_file(C / "image"), hash_file(vault.image));
  EXPECT_EQ(verify().exit_code, 0);
}

TEST_F(ReplicaRefusals, LostStateOnB) {
  replicate();
  write_random(vault.image, kLuksHeader + 4 * kMiB, 8192, 4);
  std::filesystem::remove_all(vault.image.native() + ".coffer");
  RunResult keyless = verify();
  EXPECT_EQ(keyless.exit_code, 2) << "without B's record only the key can check C: " << keyless.err;
  RunResult with_key = run(
      {"replica", "verify", vault.image.native(), C.native(), "--key-file", vault.key.native()});
  EXPECT_EQ(with_key.exit_code, 0) << "C matches its manifest, checked by its MAC\n"
                                   << with_key.err;
  RunResult r = run(
      {"replicate", "--json", vault.image.native(), C.native(), "--key-file", vault.key.native()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("no record"), std::string::npos) << r.err;
  nlohmann::json j = last_json(r.out);
  EXPECT_EQ(j["generation"], 2);
  EXPECT_EQ(j["full_compare"], true);
  EXPECT_EQ(j["blocks_changed"], 1) << "only the block that differs from C's manifest";
  EXPECT_EQ(hash_file(C / "image"), hash_file(vault.image));
  EXPECT_EQ(verify().exit_code, 0);
}

TEST_F(ReplicaRefusals, ReplicaInUse) {
  replicate();
  FileLock held(C / "lock");
  RunResult r =
      run({"replicate", vault.image.native(), C.native(), "--key-file", vault.key.native()});
  EXPECT_EQ(r.exit_code, 11) << r.err;
  EXPECT_NE(r.err.find("locked by pid " + std::to_string(::getpid())), std::string::npos) << r.err;
}

// A small tmpfs stands for C's full disk.
class SmallDisk {
 public:
  explicit SmallDisk(const std::filesystem::path& dir, const std::string& size) : dir_(dir) {
    std::filesystem::create_directories(dir);
    mounted_ = ::mount("tmpfs", dir.c_str(), "tmpfs", 0, ("size=" + size).c_str()) == 0;
  }
  ~SmallDisk() {
    if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }

 private:
  std::filesystem::path dir_;
  bool mounted_ = false;
};

TEST_F(ReplicaRefusals, FullDiskOnC) {
  SmallDisk disk(tmp / "small", "88m");
  if (!disk.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here (not root?)";
  C = tmp / "small" / "C";
  // 16 MiB of LUKS header and 24 MiB of data: fits, even beside its 40 MiB journal.
  replicate();
  std::string gen1 = hash_file(C / "image");
  // 34 MiB rewritten, 24 of them into holes: 40 + 34 (journal) + 24 (new space) is too much.
  write_random(vault.image, 30 * kMiB, 34 * kMiB, 6);
  RunResult r =
      run({"replicate", vault.image.native(), C.native(), "--key-file", vault.key.native()});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("no space left"), std::string::npos) << r.err;
  EXPECT_EQ(hash_file(C / "image"), gen1) << "C still holds generation 1";
  EXPECT_FALSE(std::filesystem::exists(C / "journal.partial"))
      << "the partial upload gave its space back";
  EXPECT_FALSE(std::filesystem::exists(C / "journal"));
  EXPECT_EQ(verify().exit_code, 0);
  nlohmann::json st = status();
  EXPECT_EQ(st["c_manifest"]["generation"], 1);
  EXPECT_NE(st["last_result"].get<std::string>().find("failed"), std::string::npos);
}

TEST_F(ReplicaRefusals, ThreadsOutOfRangeIsAUsageError) {
  replicate();
  std::string before = hash_file(C / "image");
  for (std::vector<std::string> cmd :
       {std::vector<std::string>{"replicate", "--key-file", vault.key.native()},
        {"replica", "verify"},
        {"replica", "status"}}) {
    cmd.insert(cmd.end(), {vault.image.native(), C.native(), "--threads", "50000"});
    RunResult r = run(cmd);
    EXPECT_EQ(r.exit_code, 2) << cmd[0] << ": " << r.err;
    EXPECT_NE(r.err.find("--threads"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("terminate"), std::string::npos) << r.err;
  }
  EXPECT_EQ(hash_file(C / "image"), before);
  EXPECT_EQ(
      run({"replica", "verify", vault.image.native(), C.native(), "--threads", "256"}).exit_code,
      0);
}

TEST_F(ReplicaRefusals, PassphraseCommandErrorsNameTheProgramOnly) {
  const std::string secret = "S3CRET-TOKEN-7f3a";
  write_text(tmp / "fails.sh", "#!/bin/sh\necho \"no luck\" >&2\nexit 3\n", 0755);
  for (const std::string& cmd : {"/nonexistent/getpass --token " + secret,
                                 (tmp / "fails.sh").native() + " --token " + secret,
                                 "/bin/true --token " + secret, "/bin/echo '--token " + secret}) {
    for (const char* json : {"--json", "-v"}) {
      RunResult r =
          run({json, "replicate", vault.image.native(), C.native(), "--passphrase-command", cmd});
      EXPECT_NE(r.exit_code, 0) << cmd;
      EXPECT_EQ(r.err.find(secret), std::string::npos) << r.err;
      EXPECT_EQ(r.out.find(secret), std::string::npos) << r.out;
      EXPECT_EQ(r.err.find("--token"), std::string::npos) << r.err;
      std::string program = cmd.substr(0, cmd.find(' '));
      EXPECT_NE(r.err.find(program), std::string::npos) << "the program is named: " << r.err;
    }
  }
}

}  // namespace
}  // namespace coffer::test
