// `coffer config check` through the real binary: what the config refuses matches what the
// commands refuse, and every problem is one line naming file, line and key.
#include <gtest/gtest.h>

#include "coffer/util/fd.hpp"
#include "run_coffer.hpp"
#include "temp_dir.hpp"

using namespace coffer;
using namespace coffer::test;

namespace {

RunResult check(const TempDir& dir, const std::string& text) {
  write_text(dir / "coffer.toml", "[vault]\nimage = \"" + (dir / "v.img").native() + "\"\n" + text);
  return run_coffer({"config", "check", "-c", dir / "coffer.toml"}, {}, {"COFFER_CONFIG="});
}

}  // namespace

TEST(ConfigCheck, BlockSizesFollowTheRuleReplicateUses) {
  TempDir dir;
  for (const std::string bad : {"12K", "20K", "3K", "128M"}) {
    RunResult r =
        check(dir, "[[target]]\nname = \"c\"\ndest = \"/srv/r\"\nblock_size = \"" + bad + "\"\n");
    EXPECT_EQ(r.exit_code, 2) << bad << ": " << r.out << r.err;
    EXPECT_EQ(count_lines(r.err), 1) << r.err;
    EXPECT_NE(r.err.find("coffer.toml:6: target[0].block_size: must be a power of two"),
              std::string::npos)
        << r.err;
    // replicate refuses the same value with the same words.
    r = run_coffer({"replicate", dir / "v.img", dir / "C", "--block-size", bad}, {},
                   {"COFFER_CONFIG=", "COFFER_RUNTIME_DIR=" + (dir / "run").native()});
    EXPECT_EQ(r.exit_code, 2) << bad << ": " << r.err;
    EXPECT_NE(r.err.find("must be a power of two from 4K to 64M"), std::string::npos) << r.err;
  }
  RunResult r = check(dir, "[[target]]\nname = \"c\"\ndest = \"/srv/r\"\nblock_size = \"16K\"\n");
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST(ConfigCheck, TwoTargetsWithOneDestinationAreRefused) {
  TempDir dir;
  std::filesystem::create_directories(dir / "r");
  std::filesystem::create_directory_symlink(dir / "r", dir / "link");
  for (const auto& [a, b] : std::vector<std::pair<std::string, std::string>>{
           {(dir / "r").native(), (dir / "r").native() + "/"},
           {(dir / "r").native(), (dir / "link").native()},
           {"me@host:/srv/r", "me@host:/srv/./r/"}}) {
    RunResult r = check(dir, "[[target]]\nname = \"one\"\ndest = \"" + a +
                                 "\"\n[[target]]\nname = \"two\"\ndest = \"" + b + "\"\n");
    EXPECT_EQ(r.exit_code, 2) << a << " " << b << ": " << r.err;
    EXPECT_EQ(count_lines(r.err), 1) << r.err;
    EXPECT_NE(r.err.find(":8: target[1].dest: same destination as target 'one'"), std::string::npos)
        << r.err;
  }
  RunResult r = check(dir,
                      "[[target]]\nname = \"one\"\ndest = \"me@host:/srv/r\"\n[[target]]\n"
                      "name = \"two\"\ndest = \"me@other:/srv/r\"\n");
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST(ConfigCheck, MissingExcludeFromAndABadEmailAreRefused) {
  TempDir dir;
  RunResult r = check(dir, "[[source]]\nname = \"a\"\npath = \"/home\"\nexclude_from = \"" +
                               (dir / "nope").native() + "\"\n");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find(":6: source[0].exclude_from: no such file: " + (dir / "nope").native()),
            std::string::npos)
      << r.err;
  write_text(dir / "patterns", "*.tmp\n");
  r = check(dir, "[[source]]\nname = \"a\"\npath = \"/home\"\nexclude_from = \"" +
                     (dir / "patterns").native() + "\"\n");
  EXPECT_EQ(r.exit_code, 0) << r.err;

  for (const std::string bad : {"root", "root@", "@example.org", "a@.org", "a b@example.org",
                                "a@example.org, b@example.org", "a@@example.org"}) {
    r = check(dir, "[report]\nemail = \"" + bad + "\"\n");
    EXPECT_EQ(r.exit_code, 2) << bad << ": " << r.err;
    EXPECT_EQ(count_lines(r.err), 1) << r.err;
    EXPECT_NE(r.err.find(":4: report.email: not an e-mail address"), std::string::npos) << r.err;
  }
  for (const std::string good : {"ops+backup@example.org", "root@localhost"}) {
    r = check(dir, "[report]\nemail = \"" + good + "\"\n");
    EXPECT_EQ(r.exit_code, 0) << good << ": " << r.err;
  }
}
