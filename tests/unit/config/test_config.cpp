#include <gtest/gtest.h>

#include "coffer/config/config.hpp"
#include "coffer/util/error.hpp"
#include "temp_dir.hpp"

using namespace coffer;
using namespace coffer::config;

namespace {
const char* kGood = R"(# nightly chain
runtime_dir = "/run/coffer"

[vault]
image = "/srv/coffer/vault.img"
key_file = "/etc/coffer/vault.key"

[[source]]
name = "web1"
path = "root@web1:/"
exclude = ["/proc", "/sys"]
one_file_system = true

[[source]]
name = "laptop"
path = "/home"

[retention]
daily = 14
yearly = 5
within = "1y6m"

[[target]]
name = "offsite"
dest = "backup@far:/srv/replica"
block_size = "4K"

[report]
email = "root@localhost"
)";
}

TEST(Config, ParsesEverySection) {
  ParseResult r = parse_config(kGood, "coffer.toml");
  ASSERT_TRUE(r.diagnostics.empty()) << format_diagnostic("coffer.toml", r.diagnostics[0]);
  const Config& c = r.config;
  EXPECT_EQ(c.vault.image, "/srv/coffer/vault.img");
  EXPECT_EQ(c.vault.secrets.key_file, std::filesystem::path("/etc/coffer/vault.key"));
  ASSERT_EQ(c.sources.size(), 2u);
  EXPECT_EQ(c.sources[0].path, "root@web1:/");
  EXPECT_EQ(c.sources[0].exclude, (std::vector<std::string>{"/proc", "/sys"}));
  EXPECT_TRUE(c.sources[0].one_file_system);
  EXPECT_FALSE(c.sources[1].one_file_system);
  EXPECT_EQ(c.retention.daily, 14);
  EXPECT_EQ(c.retention.weekly, 4);  // default kept
  EXPECT_EQ(c.retention.yearly, 5);
  ASSERT_TRUE(c.retention.within);
  EXPECT_EQ(*c.retention.within, (coffer::CalendarDuration{1, 6, 0, 0}));
  ASSERT_EQ(c.targets.size(), 1u);
  EXPECT_EQ(c.targets[0].block_size, 4096u);
  EXPECT_EQ(c.report.email, "root@localhost");
}

TEST(Config, UnknownKeyIsAnErrorWithItsLine) {
  ParseResult r = parse_config("[retention]\ndaily = 7\ndaly = 7\n", "c.toml");
  ASSERT_EQ(r.diagnostics.size(), 1u);
  EXPECT_EQ(r.diagnostics[0].line, 3u);
  EXPECT_EQ(r.diagnostics[0].key, "retention.daly");
  EXPECT_EQ(format_diagnostic("c.toml", r.diagnostics[0]), "c.toml:3: retention.daly: unknown key");
}

TEST(Config, RetentionWithinMustBeADuration) {
  for (const char* bad : {"within = 30", "within = \"30\"", "within = \"3w\"", "within = \"0d\""}) {
    ParseResult r = parse_config(std::string("[retention]\n") + bad + "\n", "c.toml");
    ASSERT_EQ(r.diagnostics.size(), 1u) << bad;
    EXPECT_EQ(r.diagnostics[0].key, "retention.within") << bad;
    EXPECT_EQ(r.diagnostics[0].line, 2u) << bad;
  }
  EXPECT_FALSE(parse_config("[retention]\ndaily = 1\n", "c.toml").config.retention.within);
}

TEST(Config, SyntaxErrorHasLine) {
  ParseResult r = parse_config("[vault]\nimage = \"/x\"\nkey_file = \n", "c.toml");
  ASSERT_EQ(r.diagnostics.size(), 1u);
  EXPECT_EQ(r.diagnostics[0].line, 3u);
}

TEST(Config, TypeErrorsAndMissingKeysAreAllReported) {
  ParseResult r = parse_config(
      "[vault]\nimage = 5\n[[source]]\nname = \"x y\"\n[[target]]\nname = \"t\"\n"
      "dest = \"/d\"\nblock_size = \"3K\"\n[retention]\nweekly = -1\n",
      "c.toml");
  ASSERT_EQ(r.diagnostics.size(), 5u);
  EXPECT_EQ(r.diagnostics[0].key, "vault.image");
  EXPECT_EQ(r.diagnostics[0].line, 2u);
  EXPECT_EQ(r.diagnostics[1].key, "source[0].path");
  EXPECT_EQ(r.diagnostics[2].key, "source[0].name");
  EXPECT_EQ(r.diagnostics[3].key, "target[0].block_size");
  EXPECT_EQ(r.diagnostics[4].key, "retention.weekly");
}

TEST(Config, DuplicateNames) {
  ParseResult r = parse_config(
      "[[source]]\nname = \"a\"\npath = \"/a\"\n[[source]]\nname = \"a\"\npath = \"/b\"\n", "c");
  ASSERT_EQ(r.diagnostics.size(), 1u);
  EXPECT_EQ(r.diagnostics[0].line, 5u);
  EXPECT_NE(r.diagnostics[0].message.find("duplicate"), std::string::npos);
}

TEST(Config, LoadValidConfigThrowsUsageNamingFileAndLine) {
  coffer::test::TempDir dir;
  coffer::test::write_text(dir / "c.toml", "[vault]\nimage = \"/x\"\nbogus = 1\n");
  try {
    load_valid_config(dir / "c.toml");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::usage);
    EXPECT_NE(std::string(e.what()).find("c.toml:3: vault.bogus: unknown key"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(load_config(dir / "missing.toml"), Error);
}
