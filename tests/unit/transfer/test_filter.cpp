#include <gtest/gtest.h>

#include "filter.hpp"
#include "temp_dir.hpp"

using coffer::transfer::Filter;

TEST(Filter, PatternWithoutSlashMatchesTheLastNameAtAnyDepth) {
  Filter f;
  f.add_exclude("*.o");
  EXPECT_TRUE(f.excluded("a.o", false));
  EXPECT_TRUE(f.excluded("x/y/a.o", false));
  EXPECT_FALSE(f.excluded("x/a.c", false));
  EXPECT_FALSE(f.excluded("a.o/b", false));
}

TEST(Filter, AnchoredAndDirectoryOnly) {
  Filter f;
  f.add_exclude("/tmp");
  f.add_exclude("cache/");
  EXPECT_TRUE(f.excluded("tmp", true));
  EXPECT_FALSE(f.excluded("x/tmp", true));
  EXPECT_TRUE(f.excluded("home/u/cache", true));
  EXPECT_FALSE(f.excluded("home/u/cache", false));  // a file named cache stays
}

TEST(Filter, SlashPatternsMatchTheEndOfThePathAtAComponent) {
  Filter f;
  f.add_exclude("u/*.log");
  EXPECT_TRUE(f.excluded("home/u/x.log", false));
  EXPECT_FALSE(f.excluded("home/uu/x.log", false));
  EXPECT_FALSE(f.excluded("home/u/sub/x.log", false));  // '*' does not cross '/'
  Filter g;
  g.add_exclude("/home/**/.cache");
  EXPECT_TRUE(g.excluded("home/u/v/.cache", true));
}

TEST(Filter, FirstMatchingRuleWins) {
  Filter f;
  f.add_rule("+ keep.log");
  f.add_rule("- *.log");
  EXPECT_FALSE(f.excluded("d/keep.log", false));
  EXPECT_TRUE(f.excluded("d/other.log", false));
  EXPECT_EQ(f.rules(), (std::vector<std::string>{"+ keep.log", "- *.log"}));
}

TEST(Filter, RulesFromAFile) {
  coffer::test::TempDir dir;
  coffer::test::write_text(dir / "rules", "# comment\n\n- /proc/\n+ *.keep\n*.tmp\n");
  Filter f;
  f.add_rules_from(dir / "rules");
  EXPECT_TRUE(f.excluded("proc", true));
  EXPECT_TRUE(f.excluded("a.tmp", false));
  EXPECT_FALSE(f.excluded("a.keep", false));
  EXPECT_FALSE(f.excluded("", true));  // the root is never excluded
}
