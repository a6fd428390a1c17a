// Host-key checking through the real binary, for backup (B pulls from A) and replicate (B to C):
// an unknown or changed host key is always refused, naming the host and the offered key's
// fingerprint, whatever StrictHostKeyChecking in ~/.ssh/config says; known_hosts is never
// written, and nothing is transferred.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <fstream>
#include <sstream>

#include "coffer/util/process.hpp"
#include "replica_fixture.hpp"
#include "run_coffer.hpp"
#include "sshd.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;

namespace coffer::test {
namespace {

[[maybe_unused]] auto* const sshd_env = ::testing::AddGlobalTestEnvironment(new SshdEnvironment);

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// "SHA256:..." of the fixture's host key, as ssh-keygen prints it.
std::string host_fingerprint() {
  auto r = run_checked({"ssh-keygen", "-l", "-E", "sha256", "-f",
                        SshdEnvironment::sshd().host_public_key().native()},
                       "fingerprint", "host key");
  std::istringstream fields(r.out);
  std::string bits, fingerprint;
  fields >> bits >> fingerprint;
  return fingerprint;
}

enum class KnownHosts { empty, other_key };

// A client HOME of its own whose config for the alias carries `strict` (no line when empty) and
// whose known_hosts does not hold the server's key.
class HostKeys : public ::testing::TestWithParam<std::string> {
 protected:
  void write_home(KnownHosts known) {
    auto& sshd = SshdEnvironment::sshd();
    fs::create_directories(home / ".ssh");
    if (known == KnownHosts::other_key) {
      run_checked({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", (tmp / "other").native()},
                  "generate", "key");
      std::istringstream pub(slurp(tmp / "other.pub"));
      std::string type, blob;
      pub >> type >> blob;
      write_text(known_hosts(), fmt::format("[127.0.0.1]:{} {} {}\n", sshd.port(), type, blob),
                 0600);
    } else {
      write_text(known_hosts(), "", 0600);
    }
    std::string strict = GetParam().empty() ? "" : "  StrictHostKeyChecking " + GetParam() + "\n";
    write_text(
        home / ".ssh/config",
        fmt::format("Host {}\n  HostName 127.0.0.1\n  Port {}\n  User {}\n  IdentityFile {}\n"
                    "  IdentitiesOnly yes\n  UserKnownHostsFile {}\n"
                    "  GlobalKnownHostsFile /dev/null\n{}  BatchMode yes\n",
                    sshd.alias(), sshd.port(), sshd.user(), sshd.identity().native(),
                    known_hosts().native(), strict),
        0600);
    known_before = slurp(known_hosts());
  }
  fs::path known_hosts() const { return home / ".ssh/known_hosts"; }
  std::vector<std::string> env() const { return {"HOME=" + home.native(), "SSH_AUTH_SOCK="}; }

  void expect_refused(const RunResult& r, const std::string& what) {
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_EQ(count_lines(r.err), 1) << r.err;
    EXPECT_NE(r.err.find("verify host key of"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(SshdEnvironment::sshd().alias()), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(host_fingerprint()), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(what), std::string::npos) << r.err;
    bool asks_otherwise = GetParam() == "no" || GetParam() == "accept-new";
    EXPECT_EQ(r.err.find("coffer ignores StrictHostKeyChecking " + GetParam()) != std::string::npos,
              asks_otherwise)
        << r.err;
    EXPECT_EQ(slurp(known_hosts()), known_before) << "known_hosts was written";
  }

  void backup_is_refused(const std::string& what) {
    fs::create_directories(tmp / "src");
    write_text(tmp / "src/file", "data");
    fs::create_directories(tmp / "repo");
    auto r = run_coffer({"backup", SshdEnvironment::sshd().alias() + ":" + (tmp / "src").native(),
                         (tmp / "repo").native(), "--remote-command", coffer_bin()},
                        {}, env());
    expect_refused(r, what);
    EXPECT_FALSE(fs::exists(tmp / "repo/hosts")) << "a snapshot was started";
  }

  void replicate_is_refused(const std::string& what) {
    auto vault = make_vault(tmp.path(), "vault", 32 * kMiB, 4 * kMiB, 7);
    write_text(tmp / "coffer.toml", "");
    auto env_with_runtime = env();
    env_with_runtime.push_back("COFFER_RUNTIME_DIR=" + (tmp / "run").native());
    env_with_runtime.push_back("COFFER_CONFIG=" + (tmp / "coffer.toml").native());
    auto r = run_coffer({"replicate", vault.image.native(),
                         SshdEnvironment::sshd().alias() + ":" + (tmp / "C").native(), "--key-file",
                         vault.key.native(), "--remote-command", coffer_bin()},
                        {}, env_with_runtime);
    expect_refused(r, what);
    EXPECT_FALSE(fs::exists(tmp / "C")) << "the helper ran";
  }

  TempDir tmp;
  fs::path home = tmp / "home";
  std::string known_before;
};

TEST_P(HostKeys, UnknownKeyRefusedByBackup) {
  write_home(KnownHosts::empty);
  backup_is_refused("unknown host key");
}

TEST_P(HostKeys, ChangedKeyRefusedByBackup) {
  write_home(KnownHosts::other_key);
  backup_is_refused("CHANGED");
}

TEST_P(HostKeys, UnknownKeyRefusedByReplicate) {
  write_home(KnownHosts::empty);
  replicate_is_refused("unknown host key");
}

TEST_P(HostKeys, ChangedKeyRefusedByReplicate) {
  write_home(KnownHosts::other_key);
  replicate_is_refused("CHANGED");
}

// "" = no StrictHostKeyChecking line; "yes" asks what coffer does anyway.
std::string strict_name(const ::testing::TestParamInfo<std::string>& param) {
  if (param.param.empty()) return "unset";
  return param.param == "accept-new" ? "accept_new" : param.param;
}

// "" = no StrictHostKeyChecking line; "yes" asks for what coffer does anyway.
INSTANTIATE_TEST_SUITE_P(StrictHostKeyChecking, HostKeys,
                         ::testing::Values("no", "accept-new", "yes", ""), strict_name);

}  // namespace
}  // namespace coffer::test
