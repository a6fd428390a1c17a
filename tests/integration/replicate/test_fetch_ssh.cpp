// `coffer replica fetch [user@]host:DIR` over the real sshd on loopback: the same bytes as B's
// image, sparse, and a connection cut mid-way that the next fetch resumes.
#include <gtest/gtest.h>
#include <thread>

#include "file_hash.hpp"
#include "replica_fixture.hpp"
#include "run_coffer.hpp"
#include "sshd.hpp"

namespace coffer::test {
namespace {

class FetchSsh : public ReplicaTest {
 protected:
  void SetUp() override {
    ReplicaTest::SetUp();
    ASSERT_EQ(replicate()["generation"], 1);
    write_random(vault.image, kLuksHeader + 3 * kMiB, 8 * kMiB, 41);
    ASSERT_EQ(replicate()["generation"], 2);
    out = tmp / "vault.out";
    bare_env = {"COFFER_RUNTIME_DIR=" + (tmp / "no-run").native(), "COFFER_CONFIG="};
    for (const auto& e : SshdEnvironment::sshd().env()) bare_env.push_back(e);
    source = SshdEnvironment::sshd().alias() + ":" + C.native();
  }
  std::vector<std::string> fetch_args(std::vector<std::string> extra = {}) const {
    std::vector<std::string> a{"replica",    "fetch",      "--json",           source,
                               out.native(), "--key-file", vault.key.native(), "--remote-command",
                               coffer_bin()};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  std::filesystem::path out;
  std::vector<std::string> bare_env;
  std::string source;
};

TEST_F(FetchSsh, OverSshEqualsBsImageAndStaysSparse) {
  RunResult r = run_coffer(fetch_args(), {}, bare_env);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(last_json(r.out, "fetched")["generation"], 2);
  EXPECT_EQ(hash_file(out), hash_file(vault.image));
  EXPECT_LE(allocated_bytes(out), allocated_bytes(vault.image));
}

TEST_F(FetchSsh, CutConnectionResumes) {
  const std::filesystem::path partial = tmp / ".vault.out.coffer-fetch";
  Background b(fetch_args({"--limit-rate", "16M"}), bare_env);
  for (int i = 0; i < 4000 && allocated_bytes(partial) < 20 * kMiB; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  EXPECT_GT(SshdEnvironment::sshd().kill_connections(), 0);
  RunResult cut = b.finish();
  EXPECT_NE(cut.exit_code, 0);
  EXPECT_FALSE(std::filesystem::exists(out));
  ASSERT_GE(allocated_bytes(partial), 20 * kMiB);
  RunResult r = run_coffer(fetch_args(), {}, bare_env);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json j = last_json(r.out, "fetched");
  EXPECT_TRUE(j["resumed"].get<bool>());
  // 16 MiB header (random key-slot fill) + 24 MiB of data in all; at least 4 MiB of it was kept.
  EXPECT_LT(j["bytes_received"].get<std::uint64_t>(), 40 * kMiB - 4 * kMiB) << j.dump();
  EXPECT_EQ(hash_file(out), hash_file(vault.image));
}

}  // namespace
}  // namespace coffer::test
