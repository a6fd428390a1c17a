#include <gtest/gtest.h>
#include <sys/stat.h>

#include "coffer/snapshot/layout.hpp"
#include "coffer/util/error.hpp"
#include "temp_dir.hpp"

using namespace coffer::snapshot;
namespace fs = std::filesystem;

TEST(Layout, TimestampsRoundTripAndRejectImpossibleDates) {
  EXPECT_EQ(format_timestamp(0), "1970-01-01T00-00-00Z");
  auto t = parse_timestamp("2026-11-26T05-37-42Z");
  ASSERT_TRUE(t);
  EXPECT_EQ(format_timestamp(*t), "2026-11-26T05-37-42Z");
  EXPECT_FALSE(parse_timestamp("2026-02-31T00-00-00Z"));
  EXPECT_FALSE(parse_timestamp("2026-11-26T05:37:42Z"));
  EXPECT_FALSE(parse_timestamp("latest"));
  EXPECT_FALSE(parse_timestamp(".in-progress"));
}

TEST(Layout, HostNames) {
  EXPECT_TRUE(valid_host_name("web-1.example_org"));
  EXPECT_FALSE(valid_host_name(""));
  EXPECT_FALSE(valid_host_name(".hidden"));
  EXPECT_FALSE(valid_host_name("a/b"));
  EXPECT_FALSE(valid_host_name(std::string(65, 'a')));
}

TEST(Layout, OnlySnapshotsWithTheirMarkerAreListed) {
  coffer::test::TempDir repo;
  {
    InProgress ip(repo.path(), "h", "/src");
    EXPECT_FALSE(ip.resumed());
    coffer::test::write_text(ip.tree() / "file", "x");
    coffer::test::write_text(ip.catalog(), "# coffer catalog 1\n");
    Marker m;
    m.entries = 2;
    auto info = ip.publish(m);
    EXPECT_TRUE(fs::exists(info.tree() / "file"));
    EXPECT_EQ(fs::read_symlink(repo / "hosts/h/latest"), info.name);
  }
  // A directory named like a snapshot but without its marker is not a snapshot.
  fs::create_directories(repo / "hosts/h/2000-01-01T00-00-00Z/tree");
  auto all = list_complete(repo.path(), "h");
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].marker.entries, 2u);
  EXPECT_EQ(all[0].marker.host, "h");
  EXPECT_EQ(list_hosts(repo.path()), std::vector<std::string>{"h"});
  EXPECT_TRUE(list_complete(repo.path(), "other").empty());
}

TEST(Layout, AnInterruptedSnapshotIsResumedFromItsTree) {
  coffer::test::TempDir repo;
  {
    InProgress ip(repo.path(), "h", "/src");
    coffer::test::write_text(ip.tree() / "done", "finished file");
    coffer::test::write_text(ip.staging() / "7", "half a file");
  }  // no publish: a crash
  EXPECT_TRUE(list_complete(repo.path(), "h").empty());
  InProgress again(repo.path(), "h", "/src");
  EXPECT_TRUE(again.resumed());
  ASSERT_TRUE(again.resume_base());
  EXPECT_TRUE(fs::exists(*again.resume_base() / "done"));
  EXPECT_FALSE(fs::exists(again.staging() / "7"));
  EXPECT_TRUE(fs::is_empty(again.tree()));
  coffer::test::write_text(again.catalog(), "# coffer catalog 1\n");
  auto info = again.publish({});
  EXPECT_FALSE(fs::exists(info.dir / "resume-base"));
  EXPECT_FALSE(fs::exists(info.dir / "staging"));
}

TEST(Layout, AMarkedInProgressDirectoryIsPublishedByTheNextRun) {
  coffer::test::TempDir repo;
  fs::create_directories(repo / "hosts/h/.in-progress/tree");
  Marker m;
  m.host = "h";
  m.name = "2001-02-03T04-05-06Z";
  coffer::test::write_text(repo / "hosts/h/.in-progress/complete", marker_to_json(m));
  InProgress ip(repo.path(), "h", "/src");
  EXPECT_FALSE(ip.resumed());
  auto all = list_complete(repo.path(), "h");
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].name, "2001-02-03T04-05-06Z");
}

TEST(Layout, SecondWriterOfTheSameHostIsLocked) {
  coffer::test::TempDir repo;
  InProgress first(repo.path(), "h", "/src");
  try {
    InProgress second(repo.path(), "h", "/src");
    FAIL() << "second writer was not refused";
  } catch (const coffer::Error& e) {
    EXPECT_EQ(e.kind(), coffer::ErrorKind::locked);
  }
}

TEST(Layout, MissingRepositoryIsKindMissing) {
  try {
    InProgress ip("/nonexistent/repo", "h", "/src");
    FAIL();
  } catch (const coffer::Error& e) {
    EXPECT_EQ(e.kind(), coffer::ErrorKind::missing);
  }
}
