// Which target a DEST names, block size rules, the refusal to replicate an open vault, and
// where B keeps its record of a target and its reports.
#include <gtest/gtest.h>

#include "coffer/replicate/replicate.hpp"
#include "coffer/util/atomic_file.hpp"
#include "coffer/util/error.hpp"
#include "coffer/util/fd.hpp"
#include "target_state.hpp"
#include "temp_dir.hpp"
#include "transport.hpp"

namespace coffer::replicate {
namespace {

TEST(Targets, RefusesAnOpenVault) {
  VaultFacts v;
  v.image = "/srv/vault.img";
  v.uuid = "0b3c6a5e-1f2d-4c8b-9a7e-123456789abc";
  EXPECT_NO_THROW(refuse_open_vault(v));
  v.mounted_at = "/run/coffer/mnt/vault";
  try {
    refuse_open_vault(v);
    FAIL() << "an open vault was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/run/coffer/mnt/vault"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("/srv/vault.img"), std::string::npos) << e.what();
  }
  v.mounted_at.reset();
  v.mapped = true;
  EXPECT_THROW(refuse_open_vault(v), Error) << "mapped but not mounted (a killed run)";
}

// The record of what C holds is durable state; the reports live beside it and a torn one is
// ignored. A state.json from before the reports moved out still provides them.
TEST(Targets, ReportsLiveBesideTheRecord) {
  test::TempDir root;
  const std::filesystem::path image = root / "vault.img";
  TargetState ts(image, "far");
  ts.lock();
  write_file_atomic(ts.dir() / "state.json",
                    R"({"format": 1, "generation": 7, "last_run": {"ok": true, "bytes_sent": 42},
                        "last_verify": {"ok": true}})");
  ASSERT_TRUE(ts.load());
  EXPECT_EQ(ts.record.generation, 7u);
  ASSERT_TRUE(ts.record.last_run);
  EXPECT_EQ(ts.record.last_run->bytes_sent, 42u) << "read from an older state.json";

  ts.record.last_run = RunRecord{1, false, "link lost", 5, 6, 0.5};
  ts.save();
  ts.save_last_run();
  EXPECT_EQ(read_file(ts.dir() / "state.json").find("last_run"), std::string::npos);
  TargetState again(image, "far");
  ASSERT_TRUE(again.load());
  ASSERT_TRUE(again.record.last_run);
  EXPECT_EQ(again.record.last_run->message, "link lost");
  ASSERT_TRUE(again.record.last_verify) << "moved out of the old state.json, not dropped";
  EXPECT_TRUE(again.record.last_verify->ok);

  write_file_atomic(ts.dir() / "last-run.json", "");  // what a crash may leave
  TargetState torn(image, "far");
  ASSERT_TRUE(torn.load());
  EXPECT_FALSE(torn.record.last_run);
  EXPECT_EQ(torn.record.generation, 7u);
}

TEST(Targets, BlockSizes) {
  EXPECT_EQ(check_block_size(4096), 4096u);
  EXPECT_EQ(check_block_size(64 << 20), 64u << 20);
  for (std::uint64_t bad : {0ull, 2048ull, 12288ull, 128ull << 20}) {
    try {
      check_block_size(bad);
      ADD_FAILURE() << bad << " accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::usage);
    }
  }
}

TEST(Targets, ResolvesConfiguredAndAdHocTargets) {
  std::vector<config::Target> cfg(1);
  cfg[0].name = "offsite";
  cfg[0].dest = "backup@far:/srv/replica";
  cfg[0].block_size = 16384;
  cfg[0].remote_command = "/opt/coffer/bin/coffer";
  for (const char* arg : {"offsite", "backup@far:/srv/replica"}) {
    TargetSpec t = resolve_target(arg, cfg, std::nullopt);
    EXPECT_EQ(t.name, "offsite");
    EXPECT_EQ(t.dest, "backup@far:/srv/replica");
    EXPECT_EQ(t.block_size, 16384u);
    EXPECT_EQ(t.remote_command, "/opt/coffer/bin/coffer");
  }
  EXPECT_EQ(resolve_target("offsite", cfg, 4096).block_size, 4096u);
  TargetSpec a = resolve_target("/srv/r/", cfg, std::nullopt),
             b = resolve_target("/srv/r", cfg, std::nullopt);
  EXPECT_EQ(a.name, b.name) << "the same directory is the same target";
  EXPECT_EQ(a.dest, "/srv/r");
  EXPECT_EQ(a.block_size, kDefaultBlockSize);
  EXPECT_NE(a.name, resolve_target("host:/srv/r", cfg, std::nullopt).name);
  EXPECT_THROW(resolve_target("host:", cfg, std::nullopt), Error);
}

TEST(Targets, ParsesDestinations) {
  Destination d = parse_destination("user@c.example:/srv/r");
  ASSERT_TRUE(d.remote);
  EXPECT_EQ(d.remote->user, "user");
  EXPECT_EQ(d.remote->host, "c.example");
  EXPECT_EQ(d.dir, "/srv/r");
  Destination l = parse_destination("./x:y");
  EXPECT_FALSE(l.remote) << "a ':' after a '/' is part of a local name";
  EXPECT_TRUE(l.dir.is_absolute());
}

TEST(Targets, StateLivesNextToTheImage) {
  EXPECT_EQ(target_state_dir("/srv/vault.img", "offsite"), "/srv/vault.img.coffer/targets/offsite");
}

}  // namespace
}  // namespace coffer::replicate
