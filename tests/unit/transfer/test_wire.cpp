#include <gtest/gtest.h>
#include <unistd.h>

#include "coffer/util/error.hpp"
#include "entry.hpp"
#include "wire.hpp"

using namespace coffer::transfer;

TEST(Wire, VarintsRoundTripAtTheirLimits) {
  Encoder e;
  std::vector<std::uint64_t> u = {0, 1, 127, 128, 16383, 16384, UINT32_MAX, UINT64_MAX};
  std::vector<std::int64_t> s = {0, -1, 1, -64, 64, INT64_MIN, INT64_MAX};
  for (auto v : u) e.uvar(v);
  for (auto v : s) e.svar(v);
  e.bytes(std::string("\0\n\xff", 3));
  std::string peer = "test";
  Decoder d(e.data(), peer);
  for (auto v : u) EXPECT_EQ(d.uvar(), v);
  for (auto v : s) EXPECT_EQ(d.svar(), v);
  EXPECT_EQ(d.bytes(), std::string("\0\n\xff", 3));
  EXPECT_TRUE(d.at_end());
  EXPECT_THROW(d.u8(), coffer::Error);
}

TEST(Wire, FramesCrossAPipeInOrder) {
  int fds[2] = {-1, -1};
  ASSERT_EQ(::pipe(fds), 0);
  coffer::FdStream out{coffer::UniqueFd(-1), coffer::UniqueFd(fds[1]), "writer"};
  coffer::FdStream in{coffer::UniqueFd(fds[0]), coffer::UniqueFd(-1), "reader"};
  {
    Channel w(out);
    w.send(Msg::list, "hello");
    std::vector<std::byte> big(30000, std::byte{7});  // fits in the pipe: no reader yet
    w.send2(Msg::data, "h", big);
    w.send(Msg::finish, {});
    w.close_write();
  }
  Channel r(in);
  Frame f = r.receive();
  EXPECT_EQ(f.type, Msg::list);
  EXPECT_EQ(f.payload, "hello");
  f = r.receive();
  EXPECT_EQ(f.type, Msg::data);
  EXPECT_EQ(f.payload.size(), 30001u);
  EXPECT_EQ(f.payload[0], 'h');
  f = r.receive();
  EXPECT_EQ(f.type, Msg::finish);
  EXPECT_THROW(r.receive(), coffer::Error);  // end of stream
}

TEST(Wire, FileListRoundTripsWithPrefixCompressionAndHardLinks) {
  std::vector<FileEntry> in;
  FileEntry root;
  root.type = EntryType::directory;
  root.mode = 0755;
  in.push_back(root);
  FileEntry f;
  f.path = std::string("we\nird\xff", 7);
  f.mode = 04755;
  f.uid = 1000;
  f.gid = 100;
  f.size = 1ull << 40;
  f.mtime_sec = 1700000000;
  f.mtime_nsec = 123456789;
  f.xattrs = {{"system.posix_acl_access", std::string("\x02\0\0\0", 4)}, {"user.a", "b"}};
  f.sparse = true;
  in.push_back(f);
  FileEntry l;
  l.path = "we-link";
  l.leader = 1;
  in.push_back(l);
  FileEntry s;
  s.path = "sym";
  s.type = EntryType::symlink;
  s.mode = 0777;
  s.link_target = "/etc/passwd";
  s.mtime_sec = -3;
  in.push_back(s);
  FileEntry dev;
  dev.path = "null";
  dev.type = EntryType::char_device;
  dev.mode = 0666;
  dev.rdev = 0x103;
  in.push_back(dev);

  Encoder e;
  ListEncoder enc;
  for (const auto& x : in) enc.encode(x, e);
  std::string peer = "test";
  Decoder d(e.data(), peer);
  ListDecoder dec;
  std::vector<FileEntry> out;
  while (!d.at_end()) out.push_back(dec.decode(d, out));
  ASSERT_EQ(out.size(), in.size());
  EXPECT_EQ(out[1].path, f.path);
  EXPECT_EQ(out[1].mode, 04755u);
  EXPECT_EQ(out[1].size, 1ull << 40);
  EXPECT_EQ(out[1].mtime_nsec, 123456789u);
  EXPECT_EQ(out[1].xattrs, f.xattrs);
  EXPECT_TRUE(out[1].sparse);
  EXPECT_EQ(out[2].leader, 1u);
  EXPECT_EQ(out[2].size, f.size);  // a follower carries its leader's metadata
  EXPECT_EQ(out[2].path, "we-link");
  EXPECT_EQ(out[3].link_target, "/etc/passwd");
  EXPECT_EQ(out[3].mtime_sec, -3);
  EXPECT_EQ(out[4].type, EntryType::char_device);
  EXPECT_EQ(out[4].rdev, 0x103u);
}

TEST(Wire, ReceiverRejectsPathsThatLeaveTheTree) {
  EXPECT_TRUE(valid_relative_path(""));
  EXPECT_TRUE(valid_relative_path("a/b\nc/..d"));
  EXPECT_FALSE(valid_relative_path("../etc"));
  EXPECT_FALSE(valid_relative_path("a/../../b"));
  EXPECT_FALSE(valid_relative_path("/abs"));
  EXPECT_FALSE(valid_relative_path("a//b"));
  EXPECT_FALSE(valid_relative_path("a/./b"));
  EXPECT_FALSE(valid_relative_path(std::string("a\0b", 3)));
}

TEST(Wire, XattrDigestSeesNamesAndValues) {
  EXPECT_EQ(xattr_digest({}), 0u);
  auto a = xattr_digest({{"user.a", "1"}});
  EXPECT_NE(a, 0u);
  EXPECT_NE(a, xattr_digest({{"user.a", "2"}}));
  EXPECT_NE(a, xattr_digest({{"user.b", "1"}}));
  EXPECT_NE(xattr_digest({{"user.a", "1b"}}), xattr_digest({{"user.a1", "b"}}));
}
