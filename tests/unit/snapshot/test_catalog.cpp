#include <gtest/gtest.h>

#include "coffer/snapshot/catalog.hpp"
#include "coffer/snapshot/content_hash.hpp"
#include "coffer/util/error.hpp"
#include "temp_dir.hpp"

using namespace coffer::snapshot;

TEST(Catalog, EscapesEveryByteThatIsNotPrintableAscii) {
  std::string name("a b\nc\\d\xff\x01", 9);
  std::string esc = escape_path(name);
  EXPECT_EQ(esc, "a\\x20b\\x0ac\\x5cd\\xff\\x01");
  EXPECT_EQ(unescape_path(esc), name);
  EXPECT_FALSE(unescape_path("bad\\x4"));
  EXPECT_FALSE(unescape_path("bad\\q41"));
}

TEST(Catalog, EntryRoundTripsEveryField) {
  CatalogEntry e;
  e.path = std::string("dir/we\nird \xfe", 12);
  e.type = EntryType::regular;
  e.mode = 04755;
  e.uid = 1234;
  e.gid = 5678;
  e.size = 123456789;
  e.mtime_sec = -5;  // before 1970
  e.mtime_nsec = 999999999;
  e.xattr_digest = 0xdeadbeef12345678ull;
  e.link_group = 7;
  ContentHasher h;
  h.update(std::as_bytes(std::span("abc", 3)));
  e.hash = h.finish();
  auto line = format_entry(e);
  auto back = parse_entry(line);
  ASSERT_TRUE(back) << line;
  EXPECT_EQ(back->path, e.path);
  EXPECT_EQ(back->mode, e.mode);
  EXPECT_EQ(back->uid, e.uid);
  EXPECT_EQ(back->gid, e.gid);
  EXPECT_EQ(back->size, e.size);
  EXPECT_EQ(back->mtime_sec, e.mtime_sec);
  EXPECT_EQ(back->mtime_nsec, e.mtime_nsec);
  EXPECT_EQ(back->xattr_digest, e.xattr_digest);
  EXPECT_EQ(back->link_group, e.link_group);
  EXPECT_EQ(back->hash, e.hash);

  CatalogEntry l;
  l.path = "link";
  l.type = EntryType::symlink;
  l.mode = 0777;
  l.link_target = "../target with space";
  auto lb = parse_entry(format_entry(l));
  ASSERT_TRUE(lb);
  EXPECT_EQ(lb->link_target, l.link_target);

  CatalogEntry d;
  d.type = EntryType::block_device;
  d.path = "dev/loop0";
  d.rdev = 0x700;
  auto db = parse_entry(format_entry(d));
  ASSERT_TRUE(db);
  EXPECT_EQ(db->rdev, 0x700u);
}

TEST(Catalog, RejectsMalformedLines) {
  EXPECT_FALSE(parse_entry(""));
  EXPECT_FALSE(parse_entry("x 0644 0 0 0 1.000000000 - - - - a"));
  EXPECT_FALSE(parse_entry("f 0644 0 0 0 1.5 - - - - a"));            // nanoseconds need 9 digits
  EXPECT_FALSE(parse_entry("f 0644 0 0 0 1.000000000 abc - - - a"));  // bad hash
  EXPECT_FALSE(parse_entry("f 0644 0 0 0 1.000000000 - - - - a extra"));
}

TEST(Catalog, WriterAndLoaderAgreeAndIndexByPath) {
  coffer::test::TempDir dir;
  {
    CatalogWriter w(dir / "catalog");
    for (int i = 0; i < 1000; ++i) {
      CatalogEntry e;
      e.path = "f" + std::to_string(i);
      e.size = static_cast<std::uint64_t>(i);
      w.add(e);
    }
    w.finish();
  }
  Catalog c = Catalog::load(dir / "catalog");
  ASSERT_EQ(c.entries().size(), 1000u);
  ASSERT_NE(c.find("f999"), nullptr);
  EXPECT_EQ(c.find("f999")->size, 999u);
  EXPECT_EQ(c.find("nope"), nullptr);
}

TEST(Catalog, TruncatedCatalogIsAnIntegrityError) {
  coffer::test::TempDir dir;
  coffer::test::write_text(dir / "catalog",
                           "# coffer catalog 1\nf 0644 0 0 0 1.000000000 - - - - a");
  try {
    Catalog::load(dir / "catalog");
    FAIL();
  } catch (const coffer::Error& e) {
    EXPECT_EQ(e.kind(), coffer::ErrorKind::integrity);
  }
}

TEST(ContentHash, HolesHashAsZeros) {
  ContentHasher a, b;
  std::vector<std::byte> zeros(100000);
  a.update(zeros);
  b.update_zeros(100000);
  EXPECT_EQ(a.finish(), b.finish());
}

TEST(ContentHash, BlockFormDependsOnlyOnTheContent) {
  // The same bytes fed as data, as zeros, and in odd pieces give the same block-form hash.
  std::vector<std::byte> data(300000);
  data[70000] = std::byte{1};
  data[299999] = std::byte{2};
  ContentHasher whole(true), pieces(true), holes(true);
  whole.update(data);
  for (std::size_t off = 0; off < data.size();) {
    std::size_t n = std::min<std::size_t>(data.size() - off, 777 + off % 65536);
    pieces.update(std::span(data).subspan(off, n));
    off += n;
  }
  holes.update_zeros(70000);
  holes.update(std::span(data).subspan(70000, 1));
  holes.update_zeros(299999 - 70001);
  holes.update(std::span(data).subspan(299999, 1));
  ContentHash a = whole.finish(), b = pieces.finish(), c = holes.finish();
  EXPECT_TRUE(a.blocks);
  EXPECT_EQ(a, b);
  EXPECT_EQ(a, c);
  ContentHasher plain;
  plain.update(data);
  ContentHash p = plain.finish();
  EXPECT_FALSE(p.blocks);
  using Bytes = std::array<std::uint8_t, 32>;
  EXPECT_NE(static_cast<const Bytes&>(p), static_cast<const Bytes&>(a));
  // Size counts: a longer run of trailing zeros is other content.
  ContentHasher longer(true);
  longer.update(data);
  longer.update_zeros(1);
  EXPECT_NE(longer.finish(), a);
}

TEST(ContentHash, BlockFormSkipsAnyHoleAtOnce) {
  ContentHasher h(true);
  h.update_zeros(std::uint64_t{1} << 62);  // would take centuries byte by byte
  h.update(std::as_bytes(std::span("x", 1)));
  EXPECT_EQ(h.position(), (std::uint64_t{1} << 62) + 1);
  ContentHash once = h.finish();
  ContentHasher again(true);
  again.update_zeros(std::uint64_t{1} << 61);
  again.update_zeros(std::uint64_t{1} << 61);
  again.update(std::as_bytes(std::span("x", 1)));
  EXPECT_EQ(again.finish(), once);
}

TEST(Catalog, BlockFormHashRoundTrips) {
  CatalogEntry e;
  e.path = "disk.img";
  e.size = 1 << 20;
  ContentHasher h(true);
  h.update_zeros(1 << 20);
  e.hash = h.finish();
  auto line = format_entry(e);
  EXPECT_NE(line.find(" z:"), std::string::npos) << line;
  auto back = parse_entry(line);
  ASSERT_TRUE(back) << line;
  EXPECT_EQ(back->hash, e.hash);
  EXPECT_TRUE(back->hash->blocks);
}
