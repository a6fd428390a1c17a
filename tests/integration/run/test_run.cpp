// `coffer run` through the real binary with a plain repository as B: sources over a real sshd and
// local, retention per source, a failing source, hooks, the run lock, and the reports (state
// file, Prometheus textfile, pings to a local listener, mail through a recording sendmail).
#include <gtest/gtest.h>
#include <chrono>
#include <ctime>
#include <nlohmann/json.hpp>
#include <thread>

#include "coffer/snapshot/layout.hpp"
#include "coffer/util/fd.hpp"
#include "run_coffer.hpp"
#include "run_fixture.hpp"
#include "sshd.hpp"

namespace fs = std::filesystem;
using namespace coffer;
using namespace coffer::test;

static auto* const sshd_env = ::testing::AddGlobalTestEnvironment(new SshdEnvironment);

namespace {

std::string q(const fs::path& p) {
  return "\"" + p.native() + "\"";
}

// Two sources: `a` local, `b` over the fixture's sshd; [retention] keeps the last 2, `b`'s own
// keep table the last 3.
std::string two_sources(const RunFixture& f, const std::string& report) {
  auto& sshd = SshdEnvironment::sshd();
  return "runtime_dir = " + q(f.dir() / "run") + "\n[repository]\npath = " + q(f.repo()) +
         "\n[[source]]\nname = \"a\"\npath = " + q(f.dir() / "A1") +
         "\n[[source]]\nname = \"b\"\npath = \"" + sshd.alias() + ":" + (f.dir() / "A2").native() +
         "\"\nremote_command = \"" + coffer_bin() +
         "\"\nkeep = { last = 3 }\n"
         "[retention]\nlast = 2\ndaily = 0\nweekly = 0\nmonthly = 0\nyearly = 0\n" +
         report;
}

std::size_t snapshots(const RunFixture& f, const std::string& host) {
  return snapshot::list_complete(f.repo(), host).size();
}

}  // namespace

TEST(Run, TwoSourcesThreeRunsRotatePerPolicyAndReport) {
  RunFixture f;
  HttpRecorder http;
  write_text(f.dir() / "A1" / "one.txt", "first\n");
  write_text(f.dir() / "A2" / "two.txt", "second\n");
  write_text(f.config(),
             two_sources(f, "[report]\nemail = \"root@localhost\"\nhealthcheck_url = \"" +
                                http.url() + "\"\nprometheus_textfile = " + q(f.prom()) + "\n"));
  fs::create_directories(f.prom().parent_path());
  auto env = SshdEnvironment::sshd().env();
  for (int night = 1; night <= 3; ++night) {
    write_text(f.dir() / "A1" / "one.txt", "night " + std::to_string(night) + "\n");
    write_text(f.dir() / "A2" / ("new" + std::to_string(night)), "x\n");
    RunResult r = f.coffer({"--json", "run"}, env);
    ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
    EXPECT_EQ(json_lines(r.out, "source_result").size(), 2u) << r.out;
    EXPECT_EQ(snapshots(f, "a"), static_cast<std::size_t>(std::min(night, 2))) << "night " << night;
    EXPECT_EQ(snapshots(f, "b"), static_cast<std::size_t>(night)) << "night " << night;
  }
  // The third night removed a's first snapshot ([retention] last = 2) and kept all of b's.
  EXPECT_EQ(read_file(snapshot::list_complete(f.repo(), "a").back().tree() / "one.txt"),
            "night 3\n");
  EXPECT_TRUE(fs::exists(snapshot::list_complete(f.repo(), "b").back().tree() / "new3"));

  auto m = parse_prometheus(read_file(f.prom()));
  EXPECT_EQ(m["coffer_snapshots{source=\"a\"}"], 2);
  EXPECT_EQ(m["coffer_snapshots{source=\"b\"}"], 3);
  EXPECT_EQ(m["coffer_last_run_exit_code"], 0);
  EXPECT_GT(m["coffer_last_success_timestamp_seconds{source=\"b\"}"], 1.7e9);
  EXPECT_GT(m["coffer_bytes_sent_total{source=\"a\"}"], 0);
  EXPECT_TRUE(m.count("coffer_last_run_duration_seconds"));
  EXPECT_TRUE(f.mails().empty()) << "sendmail was called on success: " << f.mails().front();
  std::vector<std::string> seen;
  for (const auto& req : http.requests()) seen.push_back(req.method + " " + req.path);
  ASSERT_EQ(seen.size(), 6u);
  EXPECT_EQ(seen[0], "GET /ping/5e1f/start");
  EXPECT_EQ(seen[1], "POST /ping/5e1f");
  EXPECT_FALSE(fs::exists(f.prom().native() + ".tmp")) << "no temporary left beside the textfile";
}

TEST(Run, AnUnreachableSourceFailsAloneAndIsReported) {
  RunFixture f;
  HttpRecorder http;
  write_text(f.dir() / "A1" / "one.txt", "first\n");
  // "dead" is an ssh alias for a loopback port nothing listens on.
  auto& sshd = SshdEnvironment::sshd();
  int port = closed_port();
  fs::path home = f.dir() / "home";
  fs::create_directories(home / ".ssh");
  write_text(home / ".ssh/config",
             read_file(sshd.ssh_config()) + "\nHost dead\n  HostName 127.0.0.1\n  Port " +
                 std::to_string(port) + "\n  BatchMode yes\n",
             0600);
  write_text(f.config(), "[repository]\npath = " + q(f.repo()) +
                             "\n[[source]]\nname = \"gone\"\npath = \"dead:/srv\"\n"
                             "[[source]]\nname = \"a\"\npath = " +
                             q(f.dir() / "A1") +
                             "\n[report]\nemail = \"root@localhost\"\nhealthcheck_url = \"" +
                             http.url() + "\"\nprometheus_textfile = " + q(f.prom()) + "\n");
  fs::create_directories(f.prom().parent_path());
  RunResult r = f.coffer({"--json", "run"}, {"HOME=" + home.native(), "SSH_AUTH_SOCK="});
  EXPECT_EQ(r.exit_code, 1) << r.err << r.out;  // kind failed; docs/exit-codes.md
  EXPECT_EQ(snapshots(f, "a"), 1u) << "the other source still ran: " << r.err;
  EXPECT_EQ(snapshots(f, "gone"), 0u);
  auto results = json_lines(r.out, "source_result");
  ASSERT_EQ(results.size(), 2u) << r.out;
  EXPECT_EQ(nlohmann::json::parse(results[0])["result"], "failed");
  EXPECT_EQ(nlohmann::json::parse(results[1])["result"], "ok");

  auto mails = f.mails();
  ASSERT_EQ(mails.size(), 1u) << r.err;
  EXPECT_NE(mails[0].find("To: root@localhost\n"), std::string::npos) << mails[0];
  EXPECT_NE(mails[0].find("FAILED"), std::string::npos) << mails[0];
  EXPECT_NE(mails[0].find("source gone (dead:/srv): failed"), std::string::npos) << mails[0];
  EXPECT_NE(mails[0].find("dead"), mails[0].find("Subject:")) << mails[0];
  auto reqs = http.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[1].method + " " + reqs[1].path, "POST /ping/5e1f/fail");
  EXPECT_NE(reqs[1].body.find("gone"), std::string::npos) << reqs[1].body;
  auto m = parse_prometheus(read_file(f.prom()));
  EXPECT_EQ(m["coffer_last_run_success{source=\"gone\"}"], 0);
  EXPECT_EQ(m["coffer_last_run_success{source=\"a\"}"], 1);
  EXPECT_EQ(m["coffer_last_success_timestamp_seconds{source=\"gone\"}"], 0);
  EXPECT_EQ(m["coffer_last_run_exit_code"], 1);
}

TEST(Run, SelectionRunsOnlyTheNamedSourcesAndRefusesUnknownNames) {
  RunFixture f;
  write_text(f.dir() / "A1" / "one.txt", "1\n");
  write_text(f.dir() / "A2" / "two.txt", "2\n");
  write_text(f.config(), "[repository]\npath = " + q(f.repo()) +
                             "\n[[source]]\nname = \"a\"\npath = " + q(f.dir() / "A1") +
                             "\n[[source]]\nname = \"c\"\npath = " + q(f.dir() / "A2") + "\n");
  RunResult r = f.coffer({"run", "--source", "c"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(snapshots(f, "a"), 0u);
  EXPECT_EQ(snapshots(f, "c"), 1u);
  r = f.coffer({"run", "--source", "nope"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("no [[source]] named 'nope'"), std::string::npos) << r.err;
  // A plain repository has no vault image to replicate: a [[target]] is a config error.
  write_text(f.config(),
             read_file(f.config()) + "[[target]]\nname = \"t\"\ndest = " + q(f.dir() / "C") + "\n");
  r = f.coffer({"config", "check"});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
}

TEST(Run, HooksSeeNameAndResultAndAFailingBeforeSkipsTheSource) {
  RunFixture f;
  write_text(f.dir() / "A1" / "one.txt", "1\n");
  write_text(f.dir() / "A2" / "two.txt", "2\n");
  fs::path log = f.dir() / "hooks.log";
  std::string rec = "[\"sh\", \"-c\", \"echo $COFFER_HOOK $COFFER_SOURCE $COFFER_RESULT >> " +
                    log.native() + "\"]";
  write_text(f.config(), "[repository]\npath = " + q(f.repo()) +
                             "\n[[source]]\nname = \"a\"\npath = " + q(f.dir() / "A1") +
                             "\nbefore = [\"false\"]\non_failure = " + rec +
                             "\n[[source]]\nname = \"c\"\npath = " + q(f.dir() / "A2") +
                             "\nbefore = " + rec + "\nafter = " + rec + "\n");
  RunResult r = f.coffer({"--json", "run"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(snapshots(f, "a"), 0u) << "a failing before hook skips the source";
  EXPECT_EQ(snapshots(f, "c"), 1u);
  EXPECT_EQ(read_file(log), "on_failure a skipped\nbefore c ok\nafter c ok\n");
  EXPECT_NE(r.err.find("before hook of source a"), std::string::npos) << r.err;
  auto results = json_lines(r.out, "source_result");
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(nlohmann::json::parse(results[0])["result"], "skipped");
}

TEST(Run, ASecondRunExits11OrWaitsForTheFirst) {
  RunFixture f;
  write_text(f.dir() / "A1" / "one.txt", "1\n");
  fs::path marker = f.dir() / "started";
  write_text(f.config(), "[repository]\npath = " + q(f.repo()) +
                             "\n[[source]]\nname = \"a\"\npath = " + q(f.dir() / "A1") +
                             "\nbefore = [\"sh\", \"-c\", \"touch " + marker.native() +
                             "; sleep 3\"]\nkeep = { last = 5 }\n");
  SpawnOptions o;
  o.null_stdin = true;
  o.env_overrides = f.env();
  Process first({coffer_bin(), "-q", "run"}, o);
  for (int i = 0; i < 200 && !fs::exists(marker); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_TRUE(fs::exists(marker));
  RunResult busy = f.coffer({"run"});
  EXPECT_EQ(busy.exit_code, 11) << busy.err;
  EXPECT_NE(busy.err.find("locked by pid"), std::string::npos) << busy.err;
  RunResult waited = f.coffer({"run", "--wait", "60"});
  EXPECT_EQ(waited.exit_code, 0) << waited.err;
  EXPECT_EQ(first.wait(), 0);
  EXPECT_EQ(snapshots(f, "a"), 2u) << "both runs made their snapshot, one after the other";
}

TEST(Status, TurnsStaleByWarnAfterAndCritAfter) {
  RunFixture f;
  write_text(f.dir() / "A1" / "one.txt", "1\n");
  write_text(f.config(), "[repository]\npath = " + q(f.repo()) +
                             "\n[[source]]\nname = \"a\"\npath = " + q(f.dir() / "A1") +
                             "\n[report]\nwarn_after = \"1d\"\ncrit_after = \"3d\"\n");
  RunResult st = f.coffer({"status"});
  EXPECT_EQ(st.exit_code, 2) << "never backed up is critical: " << st.out;
  ASSERT_EQ(f.coffer({"run"}).exit_code, 0);
  st = f.coffer({"--json", "status"});
  ASSERT_EQ(st.exit_code, 0) << st.out << st.err;
  auto row = nlohmann::json::parse(json_lines(st.out, "status").at(0));
  EXPECT_EQ(row["state"], "ok");
  EXPECT_EQ(row["snapshots"], 1);
  EXPECT_LT(row["age_seconds"].get<int>(), 60);

  // Fake the state's timestamps: two days ago is past warn_after, four days past crit_after.
  fs::path state = f.repo() / ".coffer/run-state.json";
  auto aged = [&](std::int64_t seconds) {
    auto j = nlohmann::json::parse(read_file(state));
    j["items"][0]["last_success"] = std::time(nullptr) - seconds;
    write_text(state, j.dump());
  };
  aged(2 * 86400);
  st = f.coffer({"status"});
  EXPECT_EQ(st.exit_code, 1) << st.out;
  EXPECT_NE(st.out.find(" warn "), std::string::npos) << st.out;
  aged(4 * 86400);
  st = f.coffer({"status"});
  EXPECT_EQ(st.exit_code, 2) << st.out;
  EXPECT_NE(st.out.find(" crit "), std::string::npos) << st.out;
}
