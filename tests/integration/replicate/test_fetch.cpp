// `coffer replica fetch`: disaster recovery from C with the key only. B's state and image are
// not used (the fetch runs with an empty runtime dir and no config); every attack by C ends in
// exit 13 with the bad offsets named and neither IMAGE_OUT nor a partial file left.
#include <gtest/gtest.h>
#include <thread>

#include "file_hash.hpp"
#include "replica_fixture.hpp"
#include "run_coffer.hpp"

namespace coffer::test {
namespace {

constexpr std::uint64_t kX = kLuksHeader + 1 * kMiB;  // changed in generation 2

class ReplicaFetch : public ReplicaTest {
 protected:
  void SetUp() override {
    ReplicaTest::SetUp();
    replicate();
    std::filesystem::copy(C, tmp / "C.gen1", std::filesystem::copy_options::recursive);
    write_random(vault.image, kX, 4096, 21);
    ASSERT_EQ(replicate()["generation"], 2);
    out = tmp / "restored" / "vault.img";
    std::filesystem::create_directories(out.parent_path());
    // Nothing of B's: no config, a runtime dir that does not exist.
    bare_env = {"COFFER_RUNTIME_DIR=" + (tmp / "no-run").native(), "COFFER_CONFIG="};
  }
  RunResult fetch(const std::vector<std::string>& extra = {},
                  const std::filesystem::path& key = {}) const {
    std::vector<std::string> a{"replica",
                               "fetch",
                               "--json",
                               C.native(),
                               out.native(),
                               "--key-file",
                               (key.empty() ? vault.key : key).native()};
    a.insert(a.end(), extra.begin(), extra.end());
    return run_coffer(a, {}, bare_env);
  }
  void expect_nothing_written() const {
    EXPECT_FALSE(std::filesystem::exists(out));
    EXPECT_FALSE(std::filesystem::exists(out.parent_path() / ".vault.img.coffer-fetch"));
  }
  // Exit 13, `offset` named, nothing left behind.
  void expect_refused(const std::vector<std::string>& extra, std::uint64_t offset,
                      const std::string& also) {
    RunResult r = fetch(extra);
    EXPECT_EQ(r.exit_code, 13) << r.out << r.err;
    if (offset != ~0ull) {
      EXPECT_NE(r.err.find("bad block at offset " + std::to_string(offset) + " "),
                std::string::npos)
          << r.err;
    }
    EXPECT_NE(r.err.find(also), std::string::npos) << r.err;
    expect_nothing_written();
  }
  std::filesystem::path out;
  std::vector<std::string> bare_env;
};

TEST_F(ReplicaFetch, EqualsBsImageByteForByteAndStaysSparse) {
  RunResult r = fetch();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json j = last_json(r.out, "fetched");
  EXPECT_EQ(j["generation"], 2);
  EXPECT_GT(j["time"].get<std::int64_t>(), 0);
  EXPECT_EQ(hash_file(out), hash_file(vault.image));
  EXPECT_LE(allocated_bytes(out), allocated_bytes(vault.image)) << "holes stay holes";
  EXPECT_LT(allocated_bytes(out), 48 * kMiB);
  EXPECT_LT(j["bytes_received"].get<std::uint64_t>(), 42 * kMiB) << "holes are not sent";
  EXPECT_FALSE(std::filesystem::exists(out.parent_path() / ".vault.img.coffer-fetch"));
  RunResult again = fetch();
  EXPECT_EQ(again.exit_code, 1) << "never overwrites: " << again.err;
  EXPECT_EQ(hash_file(out), hash_file(vault.image));
}

TEST_F(ReplicaFetch, WrongKeyIs12WithLittleDownloadedAndNothingWritten) {
  write_random(tmp / "wrong.key", 0, 64, 77);
  RunResult r = fetch({}, tmp / "wrong.key");
  EXPECT_EQ(r.exit_code, 12) << r.err;
  nlohmann::json j = last_json(r.out, "fetch_failed");
  EXPECT_LT(j["bytes_received"].get<std::uint64_t>(), kMiB);
  expect_nothing_written();
}

TEST_F(ReplicaFetch, FlippedByteAndOldBlockAreNamed) {
  write_random(C / "image", kLuksHeader + 20 * kMiB + 7, 1, 99);
  copy_range(tmp / "C.gen1" / "image", C / "image", kX, 65536);
  RunResult r = fetch();
  EXPECT_EQ(r.exit_code, 13) << r.err;
  EXPECT_NE(r.err.find("bad block at offset " + std::to_string(kX) + " "), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("bad block at offset " + std::to_string(kLuksHeader + 20 * kMiB) + " "),
            std::string::npos)
      << "every bad block, not only the first: " << r.err;
  expect_nothing_written();
}

TEST_F(ReplicaFetch, TruncatedImage) {
  std::filesystem::resize_file(C / "image", 64 * kMiB - 65536);
  expect_refused({}, 64 * kMiB - 65536, "truncated");
}

TEST_F(ReplicaFetch, ExtendedImage) {
  write_random(C / "image", 64 * kMiB, 4096, 5);
  expect_refused({}, 64 * kMiB, "extended");
}

TEST_F(ReplicaFetch, DoctoredLuksHeader) {
  write_random(C / "image", 4096 + 77, 1, 3);  // inside the JSON metadata
  expect_refused({}, 0, "LUKS2 header");
}

TEST_F(ReplicaFetch, DoctoredManifestFailsItsMac) {
  // A manifest entry changed to match a changed block: only the MAC can tell.
  write_random(C / "manifest", 128 + 32 * 300 + 3, 1, 8);
  expect_refused({}, ~0ull, "does not verify with this vault's key");
}

TEST_F(ReplicaFetch, ManifestOfAnOlderGeneration) {
  std::filesystem::copy_file(tmp / "C.gen1" / "manifest", C / "manifest",
                             std::filesystem::copy_options::overwrite_existing);
  expect_refused({}, kX, "contents differ from generation 1");
}

TEST_F(ReplicaFetch, WholeDirectoryRolledBackIsRefusedWithExpectations) {
  std::filesystem::remove_all(C);
  std::filesystem::rename(tmp / "C.gen1", C);
  expect_refused({"--expect-generation", "2"}, ~0ull, "holds generation 1 of ");
  expect_refused({"--not-older-than", "2099-01-01"}, ~0ull, "holds generation 1 of ");
  RunResult ok = fetch({"--not-older-than", "1h"});
  EXPECT_EQ(ok.exit_code, 0) << "generation 1 is genuine and recent: " << ok.err;
}

TEST_F(ReplicaFetch, AnotherVaultsReplicaIsRefusedByUuid) {
  nlohmann::json mine = last_json(fetch().out, "fetched");
  std::string uuid = mine["uuid"];
  std::filesystem::remove(out);
  VaultImage other = make_vault(tmp.path(), "other", 64 * kMiB, 4 * kMiB, 2);
  ASSERT_EQ(run({"replicate", other.image.native(), (tmp / "C2").native(), "--key-file",
                 other.key.native()})
                .exit_code,
            0);
  std::filesystem::remove_all(C);
  std::filesystem::rename(tmp / "C2", C);
  RunResult r = fetch({"--expect-uuid", uuid}, other.key);
  EXPECT_EQ(r.exit_code, 13) << r.err;
  EXPECT_NE(r.err.find("not of " + uuid), std::string::npos) << r.err;
  expect_nothing_written();
  EXPECT_EQ(fetch({}, vault.key).exit_code, 12)
      << "this vault's key opens no slot of another vault";
  expect_nothing_written();
}

TEST_F(ReplicaFetch, KilledMidwayResumesWithFewerBytesAndEndsIdentical) {
  write_random(vault.image, kLuksHeader, 40 * kMiB, 31);
  ASSERT_EQ(replicate()["generation"], 3);
  const std::filesystem::path partial = out.parent_path() / ".vault.img.coffer-fetch";
  std::vector<std::string> a{"replica",      "fetch",      C.native(),
                             out.native(),   "--key-file", vault.key.native(),
                             "--limit-rate", "20M"};
  Background b(a, bare_env);
  for (int i = 0; i < 4000 && allocated_bytes(partial) < 20 * kMiB; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  b.kill(SIGKILL);
  b.finish();
  ASSERT_GE(allocated_bytes(partial), 20 * kMiB);
  EXPECT_FALSE(std::filesystem::exists(out));
  RunResult r = fetch();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json j = last_json(r.out, "fetched");
  EXPECT_TRUE(j["resumed"].get<bool>()) << j.dump();
  EXPECT_GE(j["bytes_kept"].get<std::uint64_t>(), 16 * kMiB);
  // The whole image holds 56 MiB of data (16 MiB header of random key-slot fill + 40 MiB).
  EXPECT_LT(j["bytes_received"].get<std::uint64_t>(), 56 * kMiB - 16 * kMiB)
      << "sends less than the whole image: " << j.dump();
  EXPECT_EQ(hash_file(out), hash_file(vault.image));
  EXPECT_FALSE(std::filesystem::exists(partial));
}

}  // namespace
}  // namespace coffer::test

namespace coffer::test {
namespace {

// The fetched image becomes the new B: with no record of C, replicate checks C's manifest by its
// MAC, adopts it and continues at the next generation, sending only what changed.
TEST_F(ReplicaFetch, FetchedImageContinuesTheReplicaWithoutReseeding) {
  ASSERT_EQ(fetch().exit_code, 0);
  std::vector<std::string> new_b = {"COFFER_RUNTIME_DIR=" + (tmp / "new-b-run").native(),
                                    "COFFER_CONFIG="};
  write_random(out, kLuksHeader + 5 * kMiB, 65536, 55);
  RunResult r = run_coffer(
      {"replicate", "--json", out.native(), C.native(), "--key-file", vault.key.native()}, {},
      new_b);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json j = last_json(r.out, "replicated");
  EXPECT_EQ(j["generation"], 3);
  EXPECT_EQ(j["blocks_changed"], 1);
  EXPECT_LT(j["bytes_sent"].get<std::uint64_t>(), 65536 + 8192) << "nothing re-seeded";
  EXPECT_EQ(hash_file(C / "image"), hash_file(out));
}

}  // namespace
}  // namespace coffer::test
