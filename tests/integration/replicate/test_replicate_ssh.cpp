// The same protocol over a real sshd on loopback: `coffer replica-serve` started in an SSH exec
// channel, as a forced command, and a link that drops mid-upload. One sshd for the whole binary.
#include <gtest/gtest.h>
#include <thread>

#include "file_hash.hpp"
#include "replica_fixture.hpp"
#include "run_coffer.hpp"
#include "sshd.hpp"

namespace coffer::test {
namespace {

[[maybe_unused]] auto* const sshd_env = ::testing::AddGlobalTestEnvironment(new SshdEnvironment);

class ReplicateSsh : public ReplicaTest {
 protected:
  void SetUp() override {
    ReplicaTest::SetUp();
    for (const auto& e : SshdEnvironment::sshd().env()) env.push_back(e);
    dest = SshdEnvironment::sshd().alias() + ":" + C.native();
  }
  RunResult over_ssh(std::vector<std::string> a, const std::string& to) const {
    a.insert(a.end(), {vault.image.native(), to, "--remote-command", coffer_bin()});
    return run(a);
  }
  std::string dest;
};

TEST_F(ReplicateSsh, ReplicatesStatusAndVerify) {
  RunResult r = over_ssh({"replicate", "--json", "--key-file", vault.key.native()}, dest);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(hash_file(C / "image"), hash_file(vault.image));
  write_random(vault.image, kLuksHeader + 7 * kMiB, 3 * 65536, 12);
  r = over_ssh({"replicate", "--json", "--key-file", vault.key.native()}, dest);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json j = last_json(r.out);
  EXPECT_EQ(j["blocks_changed"], 3);
  EXPECT_LT(j["bytes_sent"].get<std::uint64_t>(), 3 * 65536 + 8192);
  EXPECT_EQ(hash_file(C / "image"), hash_file(vault.image));
  RunResult s = over_ssh({"replica", "status", "--json"}, dest);
  EXPECT_EQ(s.exit_code, 0) << s.err;
  EXPECT_EQ(last_json(s.out)["c_manifest"]["generation"], 2);
  write_random(C / "image", kLuksHeader + 20 * kMiB + 5, 1, 1);
  RunResult v = over_ssh({"replica", "verify"}, dest);
  EXPECT_EQ(v.exit_code, 13) << v.err;
  EXPECT_NE(v.err.find("bad block at offset " + std::to_string(kLuksHeader + 20 * kMiB)),
            std::string::npos)
      << v.err;
}

TEST_F(ReplicateSsh, ForcedCommandConfinesToItsDirectory) {
  std::filesystem::path forced_dir = tmp / "forced";
  std::string alias = SshdEnvironment::sshd().add_forced_command(coffer_bin() + " replica-serve " +
                                                                 forced_dir.native());
  // B asks for another directory; the forced command decides where the replica lives.
  RunResult r = over_ssh({"replicate", "--key-file", vault.key.native()},
                         alias + ":" + (tmp / "elsewhere").native());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(std::filesystem::exists(tmp / "elsewhere"));
  EXPECT_EQ(hash_file(forced_dir / "image"), hash_file(vault.image));
}

TEST_F(ReplicateSsh, MissingCofferOnCIsNamed) {
  RunResult r = run(
      {"replica", "status", vault.image.native(), dest, "--remote-command", "/nonexistent/coffer"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("exited with status 127"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("/nonexistent/coffer"), std::string::npos)
      << "the remote shell's complaint: " << r.err;
}

TEST_F(ReplicateSsh, DroppedConnectionResumes) {
  RunResult first = over_ssh({"replicate", "--key-file", vault.key.native()}, dest);
  ASSERT_EQ(first.exit_code, 0) << first.err;
  write_random(vault.image, kLuksHeader + kMiB, 16 * kMiB, 13);
  std::vector<std::string> a{
      "replicate",          "--key-file", vault.key.native(), "--limit-rate", "16M",
      vault.image.native(), dest,         "--remote-command", coffer_bin()};
  Background b(a, env);
  for (int i = 0; i < 2000; ++i) {
    std::error_code ec;
    if (std::filesystem::file_size(C / "journal.partial", ec) >= 5 * kMiB && !ec) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  pid_t helper = helper_pid(C);
  EXPECT_GT(SshdEnvironment::sshd().kill_connections(), 0);
  RunResult r = b.finish();
  EXPECT_NE(r.exit_code, 0);
  wait_gone(helper);
  EXPECT_EQ(
      last_json(over_ssh({"replica", "status", "--json"}, dest).out)["c_manifest"]["generation"],
      1);
  RunResult again = over_ssh({"replicate", "--json", "--key-file", vault.key.native()}, dest);
  ASSERT_EQ(again.exit_code, 0) << again.err;
  nlohmann::json j = last_json(again.out);
  EXPECT_GE(j["bytes_resumed"].get<std::uint64_t>(), 4 * kMiB);
  EXPECT_EQ(hash_file(C / "image"), hash_file(vault.image));
}

}  // namespace
}  // namespace coffer::test
