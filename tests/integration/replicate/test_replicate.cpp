// Replication through the real binary to a local DEST (the helper runs as a child over pipes):
// byte-identical copies, almost nothing sent when nothing changed, only changed blocks sent,
// sparse images, small blocks, status and verify.
#include <gtest/gtest.h>

#include "file_hash.hpp"
#include "replica_fixture.hpp"

namespace coffer::test {
namespace {

using ReplicateLocal = ReplicaTest;

TEST_F(ReplicateLocal, CopiesOnlyWhatChanged) {
  nlohmann::json first = replicate();
  EXPECT_EQ(hash_file(C / "image"), hash_file(vault.image)) << "C's image is byte-identical";
  EXPECT_EQ(first["generation"], 1);
  // 16 MiB header (mostly holes) + 24 MiB data: holes are neither read nor sent.
  EXPECT_LT(first["bytes_sent"].get<std::uint64_t>(), 41 * kMiB);
  EXPECT_LT(allocated_bytes(C / "image"), 42 * kMiB) << "C's copy stays sparse";

  nlohmann::json same = replicate();
  EXPECT_EQ(same["generation"], 2);
  EXPECT_EQ(same["blocks_changed"], 0);
  EXPECT_LT(same["bytes_sent"].get<std::uint64_t>(), 2048u) << "no change sends almost nothing";
  std::printf("no-change run sent %llu bytes\n",
              static_cast<unsigned long long>(same["bytes_sent"].get<std::uint64_t>()));

  write_random(vault.image, kLuksHeader + 5 * kMiB + 100, 10, 7);  // one 64K block
  write_random(vault.image, 50 * kMiB, 3 * kMiB, 8);               // 48 blocks, into a hole
  std::string before = hash_file(C / "image");
  RunResult dry =
      run({"-n", "replicate", "--json", vault.image.native(), C.native()});  // no key needed
  EXPECT_EQ(dry.exit_code, 0) << dry.err;
  EXPECT_EQ(last_json(dry.out)["blocks_changed"], 49);
  EXPECT_EQ(hash_file(C / "image"), before) << "--dry-run changes nothing";
  EXPECT_EQ(status()["b_record"]["generation"], 2);

  nlohmann::json changed = replicate();
  EXPECT_EQ(changed["generation"], 3);
  EXPECT_EQ(changed["blocks_changed"], 49);
  EXPECT_EQ(changed["bytes_changed"], 49 * 65536);
  EXPECT_LT(changed["bytes_sent"].get<std::uint64_t>(), 49 * 65536 + 16384);
  EXPECT_EQ(hash_file(C / "image"), hash_file(vault.image));

  nlohmann::json st = status();
  EXPECT_EQ(st["exit_code"], 0) << st["stderr"];
  EXPECT_EQ(st["matches"], true);
  EXPECT_EQ(st["c_manifest"]["generation"], 3);
  EXPECT_EQ(st["b_record"]["generation"], 3);
  EXPECT_EQ(st["last_result"], "ok");
  RunResult v = verify();
  EXPECT_EQ(v.exit_code, 0) << v.err;
  EXPECT_NE(v.out.find("1024 blocks match (1024 also proven"), std::string::npos) << v.out;
}

TEST_F(ReplicateLocal, SmallBlocksSendScatteredChangesCompactly) {
  replicate({"--block-size", "4K"});
  // 40 scattered 4 KiB writes, each in a different 64 KiB block.
  for (unsigned i = 0; i < 40; ++i)
    write_random(vault.image, kLuksHeader + i * 524288 + 8192, 4096, 100 + i);
  nlohmann::json r = replicate({"--block-size", "4K"});
  EXPECT_EQ(r["blocks_changed"], 40);
  EXPECT_EQ(r["bytes_changed"], 40 * 4096);
  EXPECT_LT(r["bytes_sent"].get<std::uint64_t>(), 40 * 4096 * 11 / 10 + 4096);
  EXPECT_EQ(hash_file(C / "image"), hash_file(vault.image));
  EXPECT_EQ(verify().exit_code, 0);
  // Back to the default block size: the digest no longer fits, every block is compared with
  // the manifest once, and only the blocks that differ are sent.
  write_random(vault.image, kLuksHeader + 3 * kMiB, 100, 200);
  nlohmann::json back = replicate();
  EXPECT_EQ(back["full_compare"], true);
  EXPECT_EQ(back["blocks_changed"], 1);
  EXPECT_EQ(hash_file(C / "image"), hash_file(vault.image));
}

TEST_F(ReplicateLocal, ImageThatGrowsAndZeroedBlocks) {
  replicate();
  write_random(vault.image, 64 * kMiB, 1 * kMiB, 9);       // grows the image to 65 MiB
  write_zeros(vault.image, kLuksHeader + kMiB, 4 * kMiB);  // 4 MiB of data overwritten with zeros
  nlohmann::json r = replicate({"--verify"});
  EXPECT_EQ(r["image_size"], 65 * kMiB);
  EXPECT_EQ(r["bytes_zeroed"], 4 * kMiB) << "zeroed blocks travel without their zeros";
  EXPECT_LT(r["bytes_sent"].get<std::uint64_t>(), kMiB + 32768);
  EXPECT_EQ(hash_file(C / "image"), hash_file(vault.image));
  write_random(C / "image", kLuksHeader + 3, 1, 3);  // and --verify fails the run when C is bad
  RunResult bad = run({"replicate", vault.image.native(), C.native(), "--key-file",
                       vault.key.native(), "--verify"});
  EXPECT_EQ(bad.exit_code, 13) << bad.err;
  EXPECT_NE(bad.err.find("bad block at offset " + std::to_string(kLuksHeader)), std::string::npos)
      << bad.err;
}

TEST_F(ReplicateLocal, ConfiguredTargetByName) {
  write_text(tmp / "coffer.toml", "[vault]\nimage = \"" + vault.image.native() +
                                      "\"\n\n[[target]]\nname = \"far\"\ndest = \"" + C.native() +
                                      "\"\nblock_size = \"16K\"\n");
  std::vector<std::string> cfg{"-c", (tmp / "coffer.toml").native()};
  auto with = [&](std::vector<std::string> a) {
    a.insert(a.begin(), cfg.begin(), cfg.end());
    return run(a);
  };
  RunResult r =
      with({"replicate", "--json", vault.image.native(), "far", "--key-file", vault.key.native()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json j = last_json(r.out);
  EXPECT_EQ(j["target"], "far");
  EXPECT_EQ(j["block_size"], 16384);
  EXPECT_TRUE(std::filesystem::exists(vault.image.native() + ".coffer/targets/far/state.json"));
  EXPECT_EQ(hash_file(C / "image"), hash_file(vault.image));
  RunResult s = with({"replica", "status", vault.image.native(), "far"});
  EXPECT_EQ(s.exit_code, 0) << s.err;
  EXPECT_NE(s.out.find("generation 1"), std::string::npos) << s.out;
}

}  // namespace
}  // namespace coffer::test
