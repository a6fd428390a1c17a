// The ssh_config reader that tells a user coffer ignores their StrictHostKeyChecking: Host
// patterns, first value wins, Include, Match, "Key=value" spellings.
#include <gtest/gtest.h>

#include "ssh_config.hpp"
#include "temp_dir.hpp"

namespace coffer {
namespace {

std::optional<std::string> strict(const std::vector<std::filesystem::path>& files,
                                  const std::string& host) {
  auto v = ssh_config_value(files, host, "StrictHostKeyChecking");
  if (!v) return std::nullopt;
  return v->value;
}

TEST(SshConfig, HostPatternsAndTheFirstValueWins) {
  test::TempDir dir;
  test::write_text(dir / "config",
                   "# comment\n"
                   "Host backup-* !backup-safe\n"
                   "  StrictHostKeyChecking no\n"
                   "Host c?.example.org,other\n"
                   "  stricthostkeychecking=accept-new\n"
                   "Host *\n"
                   "  StrictHostKeyChecking = yes\n"
                   "  StrictHostKeyChecking no\n");
  std::vector<std::filesystem::path> files{dir / "config"};
  EXPECT_EQ(strict(files, "backup-1"), "no");
  EXPECT_EQ(strict(files, "BACKUP-1"), "no");  // host names are not case-sensitive
  EXPECT_EQ(strict(files, "backup-safe"), "yes");
  EXPECT_EQ(strict(files, "c1.example.org"), "accept-new");
  EXPECT_EQ(strict(files, "c12.example.org"), "yes");
  EXPECT_EQ(strict(files, "anything"), "yes");
  EXPECT_EQ(ssh_config_value(files, "backup-1", "StrictHostKeyChecking")->file, dir / "config");
}

TEST(SshConfig, UserFileBeforeSystemFileAndMissingFilesSkipped) {
  test::TempDir dir;
  test::write_text(dir / "user", "Host a\n  StrictHostKeyChecking \"off\"\n");
  test::write_text(dir / "system", "StrictHostKeyChecking no\n");
  std::vector<std::filesystem::path> files{dir / "missing", dir / "user", dir / "system"};
  EXPECT_EQ(strict(files, "a"), "off");
  EXPECT_EQ(strict(files, "b"), "no");
  EXPECT_EQ(ssh_config_value(files, "b", "StrictHostKeyChecking")->file, dir / "system");
  EXPECT_EQ(strict({dir / "missing"}, "a"), std::nullopt);
}

TEST(SshConfig, IncludeAndMatch) {
  test::TempDir dir;
  test::write_text(dir / "conf.d/10-c.conf", "Host c\n  StrictHostKeyChecking no\n");
  test::write_text(dir / "config",
                   "Include conf.d/*.conf\n"
                   "Match host d,e !host e\n"
                   "  StrictHostKeyChecking accept-new\n"
                   "Match all\n"
                   "  StrictHostKeyChecking ask\n");
  std::vector<std::filesystem::path> files{dir / "config"};
  EXPECT_EQ(strict(files, "c"), "no");
  EXPECT_EQ(ssh_config_value(files, "c", "StrictHostKeyChecking")->file, dir / "conf.d/10-c.conf");
  EXPECT_EQ(strict(files, "d"), "accept-new");
  EXPECT_EQ(strict(files, "e"), "ask");
}

TEST(SshConfig, IncludeLoopEnds) {
  test::TempDir dir;
  test::write_text(dir / "config", "Include config\nHost x\n  StrictHostKeyChecking no\n");
  EXPECT_EQ(strict({dir / "config"}, "x"), "no");
  EXPECT_EQ(strict({dir / "config"}, "y"), std::nullopt);
}

TEST(SshConfig, HostMatching) {
  EXPECT_TRUE(ssh_host_matches("*", "x"));
  EXPECT_TRUE(ssh_host_matches("a,b*", "bee"));
  EXPECT_FALSE(ssh_host_matches("*,!bee", "bee"));
  EXPECT_FALSE(ssh_host_matches("a?", "a"));
  EXPECT_TRUE(ssh_host_matches("10.0.0.*", "10.0.0.7"));
}

}  // namespace
}  // namespace coffer
