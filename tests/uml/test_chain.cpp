// The nightly chain and the vault/replication boundary, with real dm-crypt.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <csignal>
#include <nlohmann/json.hpp>

#include "coffer/util/process.hpp"

#include "file_hash.hpp"
#include "run_coffer.hpp"
#include "vault_fixture.hpp"

using namespace coffer;
using namespace coffer::test;

TEST(Chain, ReplicatingAnOpenVaultIsRefusedAndChangesNothing) {
  VaultFixture v;
  v.create();
  v.open_with_key();
  RunResult r = v.coffer({"replicate", v.image(), v.dir() / "C", "--key-file", v.key()});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("open"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(v.dir() / "C" / "image"));
  EXPECT_FALSE(std::filesystem::exists(v.image().native() + ".coffer")) << "no state recorded on B";
  v.close();
}

TEST(Chain, RunBacksUpClosesReplicatesAndVerifies) {
  VaultFixture v;
  v.create("96M");
  std::filesystem::path src = v.dir() / "A";
  write_sample_tree(src);
  write_text(v.dir() / "coffer.toml",
             "runtime_dir = \"" + v.runtime().native() + "\"\n[vault]\nimage = \"" +
                 v.image().native() + "\"\nmount = \"" + v.mount().native() + "\"\nkey_file = \"" +
                 v.key().native() + "\"\n[[source]]\nname = \"a\"\npath = \"" + src.native() +
                 "\"\n[[target]]\nname = \"c\"\ndest = \"" + (v.dir() / "C").native() + "\"\n");
  std::vector<std::string> env{"COFFER_CONFIG=" + (v.dir() / "coffer.toml").native()};
  RunResult r = run_coffer({"--json", "run", "--verify"}, {}, env);
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_EQ(hash_file(v.dir() / "C" / "image"), hash_file(v.image()));
  // The vault is closed after the run.
  RunResult st = run_coffer({"vault", "status", "--json"}, {}, env);
  EXPECT_EQ(nlohmann::json::parse(st.out)["open"], false);

  // Second night: a changed file; unchanged files are links, C follows.
  write_text(src / "plain.txt", "changed\n");
  r = run_coffer({"--json", "run", "--verify"}, {}, env);
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  std::uint64_t linked = 0, sent = 0, kept = 0, removed = 0;
  for (std::size_t at = 0; at < r.out.size();) {
    auto nl = r.out.find('\n', at);
    auto j = nlohmann::json::parse(r.out.substr(at, nl - at));
    if (j["type"] == "backup") linked = j["linked"];
    if (j["type"] == "replicated") sent = j["bytes_sent"];
    if (j["type"] == "forget_summary" && j["host"] == "a") {
      kept = j["kept"];
      removed = j["removed"];
    }
    at = nl == std::string::npos ? r.out.size() : nl + 1;
  }
  EXPECT_GT(linked, 3u);
  // [retention] (the defaults: last 1, daily 7, ...) ran after the backup: two snapshots of
  // one day, the older one removed.
  EXPECT_EQ(kept, 1u) << r.out;
  EXPECT_EQ(removed, 1u) << r.out;
  EXPECT_LT(sent, 8u << 20) << "a small change must not resend the image";
  EXPECT_EQ(hash_file(v.dir() / "C" / "image"), hash_file(v.image()));

  // A second chain while one holds the run lock exits 11.
  RunResult s = run_coffer({"vault", "status", "--json"}, {}, env);
  std::string mapping = nlohmann::json::parse(s.out)["mapping"];
  SpawnOptions opts;
  opts.null_stdin = true;
  opts.pipe_stdout = true;
  Process holder({"flock", (v.runtime() / (mapping + ".run.lock")).native(), "sh", "-c",
                  "echo held; sleep 30"},
                 opts);
  char buf[8];
  ASSERT_GT(::read(holder.stdout_fd().get(), buf, sizeof buf), 0);
  r = run_coffer({"run"}, {}, env);
  EXPECT_EQ(r.exit_code, 11) << r.err;
  EXPECT_NE(r.err.find("locked by"), std::string::npos) << r.err;
  holder.kill(SIGKILL);
}
