// The CLI through the real binary, without dm-crypt: usage, config check, key management on a
// real LUKS2 header (made by cryptsetup, which needs no device-mapper to format), locking.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <unistd.h>
#include <csignal>
#include "coffer/util/fd.hpp"
#include "coffer/util/process.hpp"
#include "file_hash.hpp"
#include "run_coffer.hpp"
#include "temp_dir.hpp"

using namespace coffer;
using namespace coffer::test;

namespace {

class Cli : public ::testing::Test {
 protected:
  void SetUp() override {
    write_text(dir_ / "pass", "first passphrase\n", 0600);
    write_text(dir_ / "pass2", "second passphrase\n", 0600);
    write_text(dir_ / "wrong", "wrong\n", 0600);
  }
  // A real LUKS2 image (4 KiB sectors, cheap argon2id) with one passphrase slot.
  std::filesystem::path make_luks() {
    std::filesystem::path img = dir_ / "vault.img";
    run_checked({"truncate", "-s", "40M", img}, "make", "image");
    run_checked({"cryptsetup",  "luksFormat",       "-q",   "--type",
                 "luks2",       "--sector-size",    "4096", "--pbkdf",
                 "argon2id",    "--pbkdf-memory",   "4096", "--pbkdf-force-iterations",
                 "4",           "--pbkdf-parallel", "1",    "--key-file",
                 dir_ / "pass", "--keyfile-size",   "16",   img},
                "luksFormat", img.native());
    return img;
  }
  RunResult coffer(std::vector<std::string> args, const std::vector<std::string>& env = {}) {
    // Defaults first: /usr/bin/env lets later assignments (the test's own) win.
    std::vector<std::string> e{"COFFER_RUNTIME_DIR=" + (dir_ / "run").native(), "COFFER_CONFIG="};
    e.insert(e.end(), env.begin(), env.end());
    return run_coffer(args, {}, e);
  }
  std::size_t slots(const std::filesystem::path& img) {
    RunResult r = coffer({"vault", "status", img, "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return nlohmann::json::parse(r.out)["keyslots"].size();
  }
  TempDir dir_;
};

}  // namespace

TEST_F(Cli, VersionHelpAndUsageErrors) {
  RunResult r = coffer({"--version"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("coffer "), std::string::npos);
  r = coffer({"frobnicate"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  r = coffer({"vault", "create", "x.img"});  // --size missing
  EXPECT_EQ(r.exit_code, 2);
  // There is no way to pass a secret as a bare argument.
  r = coffer({"vault", "open", "x.img", "--passphrase", "hunter2"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err.find("hunter2"), std::string::npos) << "the secret was echoed: " << r.err;
}

TEST_F(Cli, ConfigCheckNamesLineAndKey) {
  RunResult r = coffer({"-c", COFFER_SOURCE_DIR "/contrib/config/coffer.toml", "config", "check"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  write_text(dir_ / "bad.toml",
             "[vault]\nimage = \"/srv/v.img\"\n\n[retention]\ndaily = 7\ndaly = "
             "3\n[[target]]\nname = \"c\"\n");
  r = coffer({"-c", dir_ / "bad.toml", "config", "check"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("bad.toml:6: retention.daly: unknown key"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("bad.toml:7: target[0].dest: missing required key"), std::string::npos)
      << r.err;
  write_text(dir_ / "syntax.toml", "[vault\nimage = 1\n");
  r = coffer({"config", "check"}, {"COFFER_CONFIG=" + (dir_ / "syntax.toml").native()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("syntax.toml:1:"), std::string::npos) << r.err;
  r = coffer({"-c", dir_ / "absent.toml", "config", "check"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("absent.toml"), std::string::npos) << r.err;
  // Commands that read the config refuse a broken one with its line, exit 2.
  r = coffer({"-c", dir_ / "bad.toml", "vault", "status"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("bad.toml:6"), std::string::npos) << r.err;
}

TEST_F(Cli, MissingAndForeignImages) {
  RunResult r = coffer({"vault", "status", dir_ / "none.img"});
  EXPECT_EQ(r.exit_code, 10);
  EXPECT_NE(r.err.find("none.img: No such file or directory"), std::string::npos) << r.err;
  write_text(dir_ / "zeros.img", std::string(1 << 16, '\0'));
  r = coffer({"vault", "open", dir_ / "zeros.img", "--passphrase-file", dir_ / "pass"});
  EXPECT_EQ(r.exit_code, 10);
  EXPECT_NE(r.err.find("not a coffer vault"), std::string::npos) << r.err;
  r = coffer({"--json", "vault", "status", dir_ / "none.img"});
  EXPECT_EQ(r.exit_code, 10);
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["type"], "error");
  EXPECT_EQ(j["kind"], "missing");
  EXPECT_EQ(j["exit_code"], 10);
}

TEST_F(Cli, KeySlotsOnARealLuksHeader) {
  std::filesystem::path img = make_luks();
  EXPECT_EQ(slots(img), 1u);
  std::string hash = hash_file(img);
  RunResult r = coffer({"vault", "add-key", img, "--passphrase-file", dir_ / "wrong",
                        "--new-passphrase-file", dir_ / "pass2"});
  EXPECT_EQ(r.exit_code, 12) << r.err;
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_EQ(hash_file(img), hash);
  // The passphrase may come from the environment or from systemd's credentials directory.
  write_text(dir_ / "creds/coffer.passphrase", "first passphrase\n", 0400);
  r = coffer({"vault", "add-key", img, "--new-passphrase-file", dir_ / "pass2", "--kdf-memory",
              "4M", "--kdf-iterations", "4", "--kdf-parallel", "1"},
             {"CREDENTIALS_DIRECTORY=" + (dir_ / "creds").native()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(slots(img), 2u);
  r = coffer({"vault", "remove-key", img}, {"COFFER_PASSPHRASE_FILE=" + (dir_ / "pass2").native()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(slots(img), 1u);
  hash = hash_file(img);
  r = coffer({"vault", "remove-key", img, "--passphrase-file", dir_ / "pass"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("last"), std::string::npos) << r.err;
  EXPECT_EQ(hash_file(img), hash);
  r = coffer({"vault", "header-backup", img, dir_ / "hdr"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  RunResult dump = run_process({"cryptsetup", "luksDump", (dir_ / "hdr").native()});
  EXPECT_EQ(dump.exit_code, 0) << dump.err;
  EXPECT_NE(dump.out.find("sector: 4096"), std::string::npos) << dump.out;
}

TEST_F(Cli, SecondCommandOnALockedVaultExits11NamingThePid) {
  std::filesystem::path img = make_luks();
  RunResult st = coffer({"vault", "status", img, "--json"});
  std::string mapping = nlohmann::json::parse(st.out)["mapping"];
  std::filesystem::create_directories(dir_ / "run");
  SpawnOptions opts;
  opts.null_stdin = true;
  opts.pipe_stdout = true;
  // flock(1) holds the lock and prints when it has it.
  Process holder(
      {"flock", (dir_ / "run" / (mapping + ".lock")).native(), "sh", "-c", "echo held; sleep 30"},
      opts);
  char buf[8];
  ASSERT_GT(::read(holder.stdout_fd().get(), buf, sizeof buf), 0);
  RunResult r = coffer({"vault", "add-key", img, "--passphrase-file", dir_ / "pass",
                        "--new-passphrase-file", dir_ / "pass2"});
  EXPECT_EQ(r.exit_code, 11) << r.err;
  EXPECT_NE(r.err.find("locked"), std::string::npos) << r.err;
  holder.kill(SIGTERM);
}

TEST_F(Cli, VaultCreateWithoutDeviceMapperFailsCleanly) {
  if (std::filesystem::exists("/proc/misc") &&
      read_file("/proc/misc").find("device-mapper") != std::string::npos)
    GTEST_SKIP() << "this kernel has device-mapper; tests/uml covers create";
  RunResult r = coffer(
      {"vault", "create", dir_ / "new.img", "--size", "64M", "--passphrase-file", dir_ / "pass"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("device-mapper"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir_ / "new.img"));
}
