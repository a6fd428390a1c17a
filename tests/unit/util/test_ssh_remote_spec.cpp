// Remote addresses and the shell quoting of remote argv. The quoting is checked against a real
// /bin/sh: whatever we quote must come back as exactly the original words.
#include <gtest/gtest.h>

#include "coffer/util/error.hpp"
#include "coffer/util/process.hpp"
#include "coffer/util/remote.hpp"

namespace coffer {
namespace {

void expect_remote(std::string_view spec, const std::string& user, const std::string& host,
                   const std::string& path) {
  auto r = parse_remote(spec);
  ASSERT_TRUE(r.has_value()) << spec;
  EXPECT_EQ(r->user, user) << spec;
  EXPECT_EQ(r->host, host) << spec;
  EXPECT_EQ(r->path, path) << spec;
}

TEST(ParseRemote, HostAndPath) {
  expect_remote("backup.example.org:/srv/data", "", "backup.example.org", "/srv/data");
  expect_remote("a:relative/dir", "", "a", "relative/dir");
  expect_remote("alias:", "", "alias", "");
  expect_remote("host:/path:with:colons", "", "host", "/path:with:colons");
}

TEST(ParseRemote, WithUser) {
  expect_remote("root@a:/", "root", "a", "/");
  expect_remote("backup-user@10.0.0.7:/var/lib", "backup-user", "10.0.0.7", "/var/lib");
  expect_remote("u@h:/x@y", "u", "h", "/x@y");
}

TEST(ParseRemote, Ipv6InBrackets) {
  expect_remote("[::1]:/srv", "", "::1", "/srv");
  expect_remote("root@[fe80::1%eth0]:data", "root", "fe80::1%eth0", "data");
  expect_remote("[2001:db8::5]:", "", "2001:db8::5", "");
}

TEST(ParseRemote, LocalPaths) {
  for (std::string_view local : {"plain", "/abs/path", "/abs/with:colon", "./a:b", "../x:y",
                                 "dir/file:name", ":leading-colon", "", "u@./x:y"})
    EXPECT_FALSE(parse_remote(local).has_value()) << local;
}

TEST(ParseRemote, MalformedBracketsAreLocal) {
  for (std::string_view spec : {"[::1]/x", "[oops:/x", "[]:/x", "u@[::1]"})
    EXPECT_FALSE(parse_remote(spec).has_value()) << spec;
}

TEST(ParseRemote, FormatRoundTrips) {
  for (std::string_view spec : {"h:/p", "u@h:/p", "[::1]:/srv", "u@[fe80::1]:x", "h:"}) {
    auto r = parse_remote(spec);
    ASSERT_TRUE(r) << spec;
    EXPECT_EQ(format_remote(*r), spec);
  }
}

TEST(ShellQuote, PlainWordsStayReadable) {
  EXPECT_EQ(shell_quote(std::vector<std::string>{"coffer", "agent", "--root", "/srv/data"}),
            "coffer agent --root /srv/data");
  EXPECT_EQ(shell_quote(std::string_view("")), "''");
  EXPECT_EQ(shell_quote(std::string_view("it's")), "'it'\\''s'");
  EXPECT_EQ(shell_quote(std::string_view("FOO=bar")), "'FOO=bar'");
}

TEST(ShellQuote, NulIsRefused) {
  std::string word("a\0b", 3);
  try {
    shell_quote(word);
    FAIL() << "NUL accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::usage);
    EXPECT_NE(std::string(e.what()).find("NUL"), std::string::npos) << e.what();
  }
}

// Every byte but NUL, plus the shapes shells treat specially, survives /bin/sh word splitting.
TEST(ShellQuote, RealShellGetsTheExactWords) {
  std::vector<std::string> words = {"printf", "%s\\0"};
  std::string all_bytes;
  for (int c = 1; c < 256; ++c) all_bytes += static_cast<char>(c);
  std::vector<std::string> odd = {
      all_bytes, "",      " ", "'",         "\"",       "\\",     "$HOME", "`id`",  "$(id)",
      "~",       "~root", "*", "a b\tc\nd", "#comment", "--x=$y", "!",     "a'b'c", "''",
      ";",       "&&",    "|", ">out",      "{a,b}",    "-n",     "é"};
  words.insert(words.end(), odd.begin(), odd.end());
  // The first word is the format for the remaining ones: each printed, then a NUL.
  auto result = run_process({"/bin/sh", "-c", shell_quote(words)});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  std::string expected;
  for (const auto& w : odd) expected += w + std::string(1, '\0');
  EXPECT_EQ(result.out, expected);
}

}  // namespace
}  // namespace coffer
