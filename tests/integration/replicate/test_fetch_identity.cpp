// `replica fetch` knows which replica it must get back where something says so besides the key:
// B's record of the image (the fetch goes to the path of B's lost image; IMAGE.coffer/ kept) and
// the note of an interrupted fetch. Another vault's replica, another replica of this vault or an
// older generation is then refused with exit 13 before the key is tried (a wrong key alone, exit
// 12, would look the same), and `replica verify` checks C against the record alone.
#include <gtest/gtest.h>
#include <fstream>
#include <thread>

#include "file_hash.hpp"
#include "replica_fixture.hpp"
#include "run_coffer.hpp"

namespace coffer::test {
namespace {

class FetchIdentity : public ReplicaTest {
 protected:
  void SetUp() override {
    ReplicaTest::SetUp();
    replicate();
    std::filesystem::copy(C, tmp / "C.gen1", std::filesystem::copy_options::recursive);
    write_random(vault.image, kLuksHeader + 1 * kMiB, 4096, 21);
    ASSERT_EQ(replicate()["generation"], 2);
    // The LUKS2 binary header keeps the UUID as text at offset 168.
    std::ifstream in(vault.image, std::ios::binary);
    std::string head(40, '\0');
    in.seekg(168);
    in.read(head.data(), 40);
    uuid = head.substr(0, head.find('\0'));
    ASSERT_EQ(uuid.size(), 36u);
    bare_env = {"COFFER_RUNTIME_DIR=" + (tmp / "no-run").native(), "COFFER_CONFIG="};
  }
  // B burnt down except its state directory: the image is gone, vault.img.coffer/ is kept.
  void lose_image() const {
    std::filesystem::remove(vault.image);
    ASSERT_TRUE(std::filesystem::exists(vault.image.native() + ".coffer/targets/far/state.json"));
  }
  RunResult fetch(const std::filesystem::path& out, const std::filesystem::path& key) const {
    return run_coffer(
        {"replica", "fetch", "--json", C.native(), out.native(), "--key-file", key.native()}, {},
        bare_env);
  }
  void swap_in(const std::filesystem::path& dir) const {
    std::filesystem::remove_all(C);
    std::filesystem::rename(dir, C);
  }
  void expect_refused_early(const RunResult& r, const std::filesystem::path& out,
                            const std::vector<std::string>& said) const {
    EXPECT_EQ(r.exit_code, 13) << r.err;
    for (const auto& s : said) EXPECT_NE(r.err.find(s), std::string::npos) << s << "\n" << r.err;
    EXPECT_LT(last_json(r.out, "fetch_failed")["bytes_received"].get<std::uint64_t>(), kMiB)
        << "refused on the manifest, before the header or any data";
    EXPECT_FALSE(std::filesystem::exists(out));
    EXPECT_FALSE(std::filesystem::exists(out.parent_path() /
                                         ("." + out.filename().native() + ".coffer-fetch")));
  }
  std::vector<std::string> bare_env;
  std::string uuid;
};

TEST_F(FetchIdentity, WithBsRecordTheFetchAgreesAndEndsIdentical) {
  std::string want = hash_file(vault.image);
  lose_image();
  RunResult r = fetch(vault.image, vault.key);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json j = last_json(r.out, "fetched");
  EXPECT_NE(j["b_record"].get<std::string>().find("target far"), std::string::npos) << j.dump();
  EXPECT_EQ(hash_file(vault.image), want);
}

TEST_F(FetchIdentity, RolledBackReplicaIsCalledARollbackByBsRecord) {
  swap_in(tmp / "C.gen1");
  lose_image();
  expect_refused_early(fetch(vault.image, vault.key), vault.image,
                       {"rolled back: it holds generation 1 of ", "B committed generation 2 of "});
}

TEST_F(FetchIdentity, AnotherVaultsReplicaIs13NotWrongKey) {
  VaultImage other = make_vault(tmp.path(), "other", 64 * kMiB, 4 * kMiB, 2);
  ASSERT_EQ(run({"replicate", other.image.native(), (tmp / "C2").native(), "--key-file",
                 other.key.native()})
                .exit_code,
            0);
  swap_in(tmp / "C2");
  lose_image();
  expect_refused_early(fetch(vault.image, vault.key), vault.image,
                       {"replica of another vault", "says this vault is " + uuid});
}

TEST_F(FetchIdentity, AnotherVaultWithTheSameKeyIsRefusedByBsRecord) {
  // One key file (or passphrase) for two vaults: it opens the other vault's header, and its MAC
  // verifies. Only B's record can say it is not this vault.
  std::filesystem::create_directories(tmp / "twin");
  VaultImage twin = make_vault(tmp / "twin", "vault", 64 * kMiB, 4 * kMiB, 1);
  ASSERT_EQ(hash_file(twin.key), hash_file(vault.key));
  ASSERT_EQ(run({"replicate", twin.image.native(), (tmp / "C2").native(), "--key-file",
                 twin.key.native()})
                .exit_code,
            0);
  swap_in(tmp / "C2");
  lose_image();
  expect_refused_early(fetch(vault.image, vault.key), vault.image,
                       {"replica of another vault", "says this vault is " + uuid});
}

TEST_F(FetchIdentity, AnotherReplicaOfTheSameVaultIsSwapped) {
  for (int i = 0; i < 3; ++i)
    ASSERT_EQ(run({"replicate", vault.image.native(), (tmp / "C2").native(), "--key-file",
                   vault.key.native()})
                  .exit_code,
              0);
  swap_in(tmp / "C2");
  lose_image();
  expect_refused_early(fetch(vault.image, vault.key), vault.image,
                       {"another replica of this vault", "swapped"});
}

TEST_F(FetchIdentity, ResumingAgainstAnotherVaultsReplicaIs13AndKeepsThePartial) {
  std::filesystem::path out = tmp / "restored.img";
  std::filesystem::path partial = tmp / ".restored.img.coffer-fetch";
  write_random(vault.image, kLuksHeader + 4 * kMiB, 30 * kMiB, 31);
  replicate();
  Background b({"replica", "fetch", C.native(), out.native(), "--key-file", vault.key.native(),
                "--limit-rate", "8M"},
               bare_env);
  for (int i = 0; i < 4000 && allocated_bytes(partial) < 20 * kMiB; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  b.kill(SIGKILL);
  b.finish();
  ASSERT_TRUE(std::filesystem::exists(partial.native() + ".json"));
  VaultImage other = make_vault(tmp.path(), "other", 64 * kMiB, 4 * kMiB, 2);
  ASSERT_EQ(run({"replicate", other.image.native(), (tmp / "C2").native(), "--key-file",
                 other.key.native()})
                .exit_code,
            0);
  swap_in(tmp / "C2");
  RunResult r = fetch(out, vault.key);
  EXPECT_EQ(r.exit_code, 13) << r.err;
  EXPECT_NE(r.err.find("now holds a replica of another vault"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(out));
  EXPECT_GE(allocated_bytes(partial), 20 * kMiB) << "the earlier, verified part is kept";
}

TEST_F(FetchIdentity, VerifyWithBsImageLostNamesTheRollback) {
  swap_in(tmp / "C.gen1");
  lose_image();
  RunResult v = verify();
  EXPECT_EQ(v.exit_code, 13) << v.err;
  EXPECT_NE(v.err.find("rolled back to generation 1 of "), std::string::npos) << v.err;
  EXPECT_NE(v.err.find("B committed generation 2 of "), std::string::npos) << v.err;
}

}  // namespace
}  // namespace coffer::test
