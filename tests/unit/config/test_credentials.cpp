#include <gtest/gtest.h>
#include <cstdlib>

#include "coffer/config/credentials.hpp"
#include "coffer/util/error.hpp"
#include "temp_dir.hpp"

using namespace coffer;
using namespace coffer::config;
using coffer::test::TempDir;
using coffer::test::write_text;

namespace {
// Clears the COFFER_* variables and CREDENTIALS_DIRECTORY for one test.
void clear_secret_env() {
  for (const char* v : {"COFFER_KEY_FILE", "COFFER_PASSPHRASE_FILE", "COFFER_PASSPHRASE_COMMAND",
                        "CREDENTIALS_DIRECTORY"})
    ::unsetenv(v);
}
struct CleanEnv {
  CleanEnv() { clear_secret_env(); }
  ~CleanEnv() { clear_secret_env(); }
};
}  // namespace

TEST(Credentials, CommandLineBeatsEnvironmentBeatsConfigBeatsSystemd) {
  CleanEnv clean;
  TempDir dir;
  write_text(dir / "creds/coffer.key", "K-systemd");
  write_text(dir / "creds/coffer.passphrase", "P-systemd\n");
  ::setenv("CREDENTIALS_DIRECTORY", (dir / "creds").c_str(), 1);
  SecretPaths none;
  SecretPaths r = resolve_secret_paths(none, nullptr);
  EXPECT_EQ(r.key_file, dir / "creds/coffer.key");
  EXPECT_EQ(r.passphrase_file, dir / "creds/coffer.passphrase");

  SecretPaths from_config{std::filesystem::path("/cfg/key"), std::nullopt, std::string("pass x")};
  r = resolve_secret_paths(none, &from_config);
  EXPECT_EQ(r.key_file, std::filesystem::path("/cfg/key"));
  EXPECT_FALSE(r.passphrase_file);
  EXPECT_EQ(r.passphrase_command, std::string("pass x"));

  ::setenv("COFFER_KEY_FILE", "/env/key", 1);
  ::setenv("COFFER_PASSPHRASE_FILE", "/env/pass", 1);
  r = resolve_secret_paths(none, &from_config);
  EXPECT_EQ(r.key_file, std::filesystem::path("/env/key"));
  EXPECT_EQ(r.passphrase_file, std::filesystem::path("/env/pass"));
  EXPECT_FALSE(r.passphrase_command);

  SecretPaths cli{std::filesystem::path("/cli/key"), std::nullopt, std::string("cmd")};
  r = resolve_secret_paths(cli, &from_config);
  EXPECT_EQ(r.key_file, std::filesystem::path("/cli/key"));
  EXPECT_EQ(r.passphrase_command, std::string("cmd"));
  EXPECT_FALSE(r.passphrase_file);
}

TEST(Credentials, LoadsFilesAndRunsCommandWithoutShell) {
  CleanEnv clean;
  TempDir dir;
  write_text(dir / "key", std::string("\x01\x02\n", 3), 0400);
  SecretPaths p{dir / "key", std::nullopt, std::string("printf '%s\\n' 'it is; $secret'")};
  Credentials c = load_credentials(p);
  ASSERT_TRUE(c.key);
  EXPECT_EQ(c.key->size(), 3u);  // key files keep their newline
  ASSERT_TRUE(c.passphrase);
  EXPECT_EQ(std::string(c.passphrase->chars(), c.passphrase->size()), "it is; $secret");
  EXPECT_NE(c.key_source.find((dir / "key").native()), std::string::npos);
}

TEST(Credentials, MissingFileOrFailingCommandIsAnError) {
  CleanEnv clean;
  SecretPaths missing{std::filesystem::path("/nonexistent/key"), std::nullopt, std::nullopt};
  EXPECT_THROW(load_credentials(missing), Error);
  SecretPaths failing{std::nullopt, std::nullopt, std::string("false")};
  EXPECT_THROW(load_credentials(failing), Error);
}
