// Attacks by C, each caught by `replica verify` (exit 13, the bad block's offset named) and,
// where B can see it without reading C's image, refused by `replicate`.
#include <gtest/gtest.h>

#include "file_hash.hpp"
#include "replica_fixture.hpp"

namespace coffer::test {
namespace {

constexpr std::uint64_t kX = kLuksHeader + 1 * kMiB;         // changed in generation 2
constexpr std::uint64_t kY = kLuksHeader + 9 * kMiB + 4096;  // changed in generation 3
constexpr std::uint64_t kYBlock = kLuksHeader + 9 * kMiB;

// Three generations are made once for the suite (kept in `pristine`); every test starts from a
// fresh copy of them: the vault, B's state and C's directory.
class ReplicaAttacks : public ReplicaTest {
 protected:
  static inline std::unique_ptr<TempDir> pristine;

  static void SetUpTestSuite() {
    pristine = std::make_unique<TempDir>();
    ReplicaAttacks maker;
    maker.build(pristine->path());
  }
  static void TearDownTestSuite() { pristine.reset(); }

  void TestBody() override {}
  void build(const std::filesystem::path& into) {
    ReplicaTest::SetUp();
    replicate();
    std::filesystem::copy_file(C / "image", tmp / "image.gen1");
    write_random(vault.image, kX, 4096, 21);
    replicate();
    std::filesystem::copy(C, tmp / "C.gen2", std::filesystem::copy_options::recursive);
    write_random(vault.image, kY, 4096, 22);
    nlohmann::json j = replicate();
    ASSERT_EQ(j["generation"], 3);
    for (const auto& e : std::filesystem::directory_iterator(tmp.path()))
      std::filesystem::copy(e.path(), into / e.path().filename(),
                            std::filesystem::copy_options::recursive);
  }

  void SetUp() override {
    for (const auto& e : std::filesystem::directory_iterator(pristine->path()))
      std::filesystem::copy(e.path(), tmp / e.path().filename(),
                            std::filesystem::copy_options::recursive);
    vault = {tmp / "vault.img", tmp / "vault.key"};
    C = tmp / "C";
    use_paths();
    ASSERT_EQ(verify().exit_code, 0);
  }

  // `replica verify` must fail with 13 and name `offset`.
  void expect_caught(std::uint64_t offset, const std::string& also = "") {
    RunResult v = verify();
    EXPECT_EQ(v.exit_code, 13) << v.out << v.err;
    EXPECT_NE(v.err.find("bad block at offset " + std::to_string(offset) + " "), std::string::npos)
        << "offset " << offset << " not named in:\n"
        << v.err;
    if (!also.empty()) {
      EXPECT_NE(v.err.find(also), std::string::npos) << v.err;
    }
  }

  void expect_replicate_refused(const std::string& why) {
    std::string before = hash_file(C / "image");
    RunResult r =
        run({"replicate", vault.image.native(), C.native(), "--key-file", vault.key.native()});
    EXPECT_EQ(r.exit_code, 13) << r.err;
    EXPECT_NE(r.err.find(why), std::string::npos) << r.err;
    EXPECT_EQ(hash_file(C / "image"), before) << "a refused run writes nothing";
  }
};

TEST_F(ReplicaAttacks, FlippedByte) {
  write_random(C / "image", kY + 100, 1, 99);
  expect_caught(kYBlock, "contents differ from generation 3");
}

TEST_F(ReplicaAttacks, OldCopyOfOneBlockPutBack) {
  copy_range(tmp / "image.gen1", C / "image", kX, 65536);
  expect_caught(kX);
}

TEST_F(ReplicaAttacks, ImageTruncated) {
  std::filesystem::resize_file(C / "image", 64 * kMiB - 65536);
  expect_caught(64 * kMiB - 65536, "truncated");
  expect_replicate_refused("truncated or extended");
}

TEST_F(ReplicaAttacks, ImageExtended) {
  write_random(C / "image", 64 * kMiB, 4096, 5);
  expect_caught(64 * kMiB, "extended");
  expect_replicate_refused("truncated or extended");
}

TEST_F(ReplicaAttacks, ManifestReplacedByAnOlderGeneration) {
  std::filesystem::copy_file(tmp / "C.gen2" / "manifest", C / "manifest",
                             std::filesystem::copy_options::overwrite_existing);
  expect_caught(kYBlock, "rolled back to generation 2");
  expect_replicate_refused("rolled back to generation 2");
}

TEST_F(ReplicaAttacks, WholeDirectoryRolledBack) {
  std::filesystem::remove_all(C);
  std::filesystem::rename(tmp / "C.gen2", C);
  expect_caught(kYBlock, "rolled back to generation 2");
  expect_replicate_refused("rolled back to generation 2");
}

TEST_F(ReplicaAttacks, AnotherVaultsReplicaSwappedIn) {
  VaultImage other = make_vault(tmp.path(), "other", 64 * kMiB, 24 * kMiB, 2);
  RunResult r = run(
      {"replicate", other.image.native(), (tmp / "C2").native(), "--key-file", other.key.native()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::filesystem::remove_all(C);
  std::filesystem::rename(tmp / "C2", C);
  expect_caught(0, "another vault");
  expect_replicate_refused("another vault");
  EXPECT_EQ(hash_file(C / "image"), hash_file(other.image))
      << "the other vault's replica is untouched";
}

TEST_F(ReplicaAttacks, AnotherReplicaOfTheSameVaultSwappedIn) {
  // A second target of the same vault, at the same generation number but older contents.
  write_random(vault.image, kX + 65536, 4096, 30);
  std::filesystem::path C2 = tmp / "C2";
  for (int i = 0; i < 3; ++i)
    ASSERT_EQ(
        run({"replicate", vault.image.native(), C2.native(), "--key-file", vault.key.native()})
            .exit_code,
        0);
  std::filesystem::remove_all(C);
  std::filesystem::rename(C2, C);
  expect_caught(kX + 65536, "swapped");
  expect_replicate_refused("swapped");
}

}  // namespace
}  // namespace coffer::test
