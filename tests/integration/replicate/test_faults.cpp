// Fault injection: the helper or the link is killed during the upload, right after the commit,
// and during the apply. C must hold generation N, or N plus a committed journal that every next
// command finishes to exactly N+1; an interrupted upload resumes instead of starting over.
#include <gtest/gtest.h>
#include <sys/inotify.h>
#include <csignal>
#include <thread>

#include "file_hash.hpp"
#include "replica_fixture.hpp"
#include "run_coffer.hpp"

namespace coffer::test {
namespace {

constexpr std::uint64_t kChange = 24 * kMiB;

class ReplicateFaults : public ReplicaTest {
 protected:
  std::string gen1, gen2;

  void SetUp() override {
    ReplicaTest::SetUp();
    replicate();
    gen1 = hash_file(C / "image");
    write_random(vault.image, kLuksHeader + 2 * kMiB, kChange, 77);  // 384 blocks of 64K
    gen2 = hash_file(vault.image);
  }

  std::vector<std::string> replicate_args(std::vector<std::string> extra = {}) const {
    std::vector<std::string> a{"replicate", "--json",     vault.image.native(),
                               C.native(),  "--key-file", vault.key.native()};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }

  // Waits until C's partial journal holds `bytes`.
  void wait_partial(std::uint64_t bytes) {
    for (int i = 0; i < 2000; ++i) {
      std::error_code ec;
      if (std::filesystem::file_size(C / "journal.partial", ec) >= bytes && !ec) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    FAIL() << "the upload never reached " << bytes << " bytes";
  }

  void kill_helper() {
    pid_t h = helper_pid(C);
    ASSERT_GT(h, 0);
    ::kill(h, SIGKILL);
    wait_gone(h);
  }

  void expect_generation_on_c(int gen, const std::string& hash) {
    EXPECT_EQ(hash_file(C / "image"), hash);
    nlohmann::json st = status();
    EXPECT_EQ(st["c_manifest"]["generation"], gen) << st.dump();
  }
};

TEST_F(ReplicateFaults, HelperKilledDuringUploadResumes) {
  Background b(replicate_args({"--limit-rate", "16M"}), env);
  wait_partial(6 * kMiB);
  kill_helper();
  RunResult r = b.finish();
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find(C.native()), std::string::npos) << "the error names the replica: " << r.err;
  expect_generation_on_c(1, gen1);
  EXPECT_GT(status()["partial_bytes"].get<std::uint64_t>(), 5 * kMiB);

  nlohmann::json j = replicate();
  EXPECT_EQ(j["generation"], 2);
  EXPECT_GE(j["bytes_resumed"].get<std::uint64_t>(), 5 * kMiB);
  EXPECT_LT(j["bytes_sent"].get<std::uint64_t>(), kChange - 5 * kMiB + 65536)
      << "the second attempt sends only what the first did not";
  std::printf("interrupted upload: resumed %llu bytes, sent %llu of %llu\n",
              static_cast<unsigned long long>(j["bytes_resumed"].get<std::uint64_t>()),
              static_cast<unsigned long long>(j["bytes_sent"].get<std::uint64_t>()),
              static_cast<unsigned long long>(kChange));
  EXPECT_EQ(hash_file(C / "image"), gen2);
  EXPECT_EQ(verify().exit_code, 0);
}

TEST_F(ReplicateFaults, LinkDroppedDuringUploadResumes) {
  Background b(replicate_args({"--limit-rate", "16M"}), env);
  wait_partial(4 * kMiB);
  pid_t h = helper_pid(C);
  b.kill(SIGKILL);  // B dies: the helper sees its input end mid-upload
  b.finish();
  wait_gone(h);
  expect_generation_on_c(1, gen1);
  EXPECT_TRUE(std::filesystem::exists(C / "journal.partial"));
  nlohmann::json j = replicate();
  EXPECT_GE(j["bytes_resumed"].get<std::uint64_t>(), 3 * kMiB);
  EXPECT_EQ(hash_file(C / "image"), gen2);
}

TEST_F(ReplicateFaults, HelperKilledRightAfterCommit) {
  DirWatch watch(C, IN_MOVED_TO);
  Background b(replicate_args(), env);
  ASSERT_TRUE(watch.wait_for("journal", IN_MOVED_TO, std::chrono::seconds(30)));
  kill_helper();
  b.finish();
  ASSERT_TRUE(std::filesystem::exists(C / "journal"))
      << "the helper finished applying before it was killed";
  std::string now = hash_file(C / "image");
  EXPECT_NE(now, gen2) << "the image was not yet fully updated";
  // Any command that touches C finishes the committed journal first.
  nlohmann::json st = status();
  EXPECT_EQ(st["exit_code"], 0) << st["stderr"];
  EXPECT_EQ(st["recovered_generation"], 2);
  EXPECT_FALSE(std::filesystem::exists(C / "journal"));
  expect_generation_on_c(2, gen2);
  nlohmann::json j = replicate();
  EXPECT_EQ(j["generation"], 3) << "B records generation 2, which it had not heard committed";
  EXPECT_EQ(j["blocks_changed"], 0);
  EXPECT_EQ(verify().exit_code, 0);
}

TEST_F(ReplicateFaults, HelperKilledDuringApply) {
  DirWatch watch(C, IN_MOVED_TO | IN_MODIFY);
  Background b(replicate_args(), env);
  ASSERT_TRUE(watch.wait_for("journal", IN_MOVED_TO, std::chrono::seconds(30)));
  ASSERT_TRUE(watch.wait_for("image", IN_MODIFY, std::chrono::seconds(30)));
  kill_helper();
  b.finish();
  ASSERT_TRUE(std::filesystem::exists(C / "journal")) << "the apply finished before the kill";
  // The image is a mix now, but image + committed journal = generation 2.
  nlohmann::json j = replicate();
  EXPECT_EQ(j["recovered_generation"], 2);
  EXPECT_EQ(j["base_generation"], 2);
  EXPECT_EQ(j["blocks_changed"], 0);
  EXPECT_EQ(hash_file(C / "image"), gen2);
  EXPECT_EQ(verify().exit_code, 0);
}

TEST(ReplicateFirstUpload, InterruptedFirstUploadResumes) {
  TempDir tmp;
  VaultImage v = make_vault(tmp.path(), "v", 48 * kMiB, 24 * kMiB, 5);
  std::filesystem::path C = tmp / "C";
  std::vector<std::string> env{"COFFER_RUNTIME_DIR=" + (tmp / "run").native()};
  std::vector<std::string> a{"replicate", "--json",     v.image.native(),
                             C.native(),  "--key-file", v.key.native()};
  {
    auto slow = a;
    slow.insert(slow.end(), {"--limit-rate", "16M"});
    Background b(slow, env);
    for (int i = 0; i < 2000; ++i) {
      std::error_code ec;
      if (std::filesystem::file_size(C / "journal.partial", ec) >= 8 * kMiB && !ec) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    b.kill(SIGTERM);  // an interrupted run, the way a user or systemd stops one
    RunResult r = b.finish();
    EXPECT_EQ(r.exit_code, 130) << r.err;
  }
  EXPECT_FALSE(std::filesystem::exists(C / "manifest")) << "no generation exists yet";
  RunResult r = run_coffer(a, {}, env);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json j = last_json(r.out);
  EXPECT_EQ(j["generation"], 1);
  EXPECT_GE(j["bytes_resumed"].get<std::uint64_t>(), 7 * kMiB);
  EXPECT_EQ(hash_file(C / "image"), hash_file(v.image));
}

}  // namespace
}  // namespace coffer::test
