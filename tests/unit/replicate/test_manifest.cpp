// The manifest: byte layout round trip, MAC over header and entries, key derivation, rejection
// of malformed files; and B's digest file.
#include <gtest/gtest.h>
#include <cstring>

#include "coffer/replicate/manifest.hpp"
#include "coffer/util/error.hpp"
#include "coffer/util/fd.hpp"
#include "digest.hpp"
#include "temp_dir.hpp"

namespace coffer::replicate {
namespace {

Manifest sample(std::uint64_t size = 300000) {
  Manifest m;
  m.header.generation = 7;
  m.header.time = 1700000000;
  m.header.image_size = size;
  m.header.detect_block_size = 4096;
  m.header.replica_id[0] = std::byte{0x42};
  m.header.luks_uuid = parse_uuid("0b3c6a5e-1f2d-4c8b-9a7e-123456789abc");
  for (std::uint64_t i = 0; i < m.header.block_count(); ++i) {
    std::byte b{static_cast<unsigned char>(i)};
    m.entries.push_back(strong_hash(std::span(&b, 1)));
  }
  return m;
}

Secret key_of(unsigned char fill) {
  Secret vk(64);
  std::memset(vk.data(), fill, vk.size());
  return derive_mac_key(vk);
}

TEST(Manifest, RoundTripsAndAuthenticates) {
  Secret key = key_of(1);
  Manifest m = sample();
  EXPECT_EQ(m.header.block_count(), 5u);  // 300000 / 65536 rounded up
  m.mac = m.compute_mac(key);
  std::vector<std::byte> bytes = m.encode();
  EXPECT_EQ(bytes.size(), kManifestHeaderSize + 5 * 32 + kMacSize);
  Manifest back = Manifest::decode(bytes, "test");
  EXPECT_EQ(back.header, m.header);
  EXPECT_EQ(back.entries, m.entries);
  EXPECT_TRUE(back.mac_valid(key));
  EXPECT_FALSE(back.mac_valid(key_of(2))) << "another vault's key must not validate it";
}

TEST(Manifest, MacCoversEveryField) {
  Secret key = key_of(1);
  Manifest m = sample();
  m.mac = m.compute_mac(key);
  Manifest t = m;
  t.entries[3].bytes[0] ^= std::byte{1};
  EXPECT_FALSE(t.mac_valid(key)) << "an entry";
  t = m;
  t.header.generation = 6;
  EXPECT_FALSE(t.mac_valid(key)) << "the generation";
  t = m;
  t.header.time += 1;
  EXPECT_FALSE(t.mac_valid(key)) << "the time";
  t = m;
  t.header.replica_id[1] = std::byte{1};
  EXPECT_FALSE(t.mac_valid(key)) << "the replica id";
}

TEST(Manifest, KeyDerivationIsDeterministicAndSeparated) {
  Secret a = key_of(7), b = key_of(7), c = key_of(8);
  ASSERT_EQ(a.size(), 32u);
  EXPECT_TRUE(secret_equal(a.bytes(), b.bytes()));
  EXPECT_FALSE(secret_equal(a.bytes(), c.bytes()));
  Secret vk(64);
  std::memset(vk.data(), 7, 64);
  EXPECT_FALSE(secret_equal(a.bytes(), std::span(vk.bytes()).first(32)))
      << "never the volume key itself";
}

TEST(Manifest, RejectsMalformedInput) {
  Manifest m = sample();
  std::vector<std::byte> good = m.encode();
  auto expect_integrity = [](std::vector<std::byte> bytes, const char* what) {
    try {
      Manifest::decode(bytes, "m");
      ADD_FAILURE() << what << " was accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::integrity) << what;
    }
  };
  expect_integrity({good.begin(), good.begin() + 100}, "a truncated header");
  expect_integrity({good.begin(), good.end() - 1}, "a truncated MAC");
  auto bad = good;
  bad[0] = std::byte{'X'};
  expect_integrity(bad, "a bad magic");
  bad = good;
  bad[48] = std::byte{9};  // block count
  expect_integrity(bad, "a block count that does not match the size");
  bad = good;
  bad[40] = std::byte{0x01};  // block size 65537
  expect_integrity(bad, "a block size that is not a power of two");
}

TEST(Manifest, SaveAndLoad) {
  test::TempDir tmp;
  Manifest m = sample(0);
  EXPECT_EQ(m.header.block_count(), 0u);
  m.mac = m.compute_mac(key_of(3));
  m.save(tmp / "manifest");
  Manifest back = Manifest::load(tmp / "manifest");
  EXPECT_EQ(back.header, m.header);
  EXPECT_EQ(back.mac, m.mac);
}

TEST(Manifest, UuidAndTimeFormats) {
  EXPECT_EQ(format_uuid(parse_uuid("0B3C6A5E-1F2D-4C8B-9A7E-123456789ABC")),
            "0b3c6a5e-1f2d-4c8b-9a7e-123456789abc");
  EXPECT_THROW(parse_uuid("0b3c6a5e"), Error);
  EXPECT_THROW(parse_uuid("zz3c6a5e-1f2d-4c8b-9a7e-123456789abc"), Error);
  EXPECT_EQ(format_time(0), "1970-01-01 00:00:00 UTC");
}

TEST(Digest, RoundTripAndDamage) {
  test::TempDir tmp;
  Digest d{4096, 10000, {}};
  for (int i = 0; i < 3; ++i) {
    std::byte b{static_cast<unsigned char>(i)};
    d.blocks.push_back(fast_hash(std::span(&b, 1)));
  }
  d.save(tmp / "digest.1");
  auto back = Digest::load(tmp / "digest.1");
  ASSERT_TRUE(back);
  EXPECT_EQ(back->blocks, d.blocks);
  EXPECT_EQ(back->image_size, 10000u);
  EXPECT_FALSE(Digest::load(tmp / "missing"));
  std::string text = read_file(tmp / "digest.1");
  text[60] ^= 1;
  test::write_text(tmp / "digest.2", text);
  EXPECT_FALSE(Digest::load(tmp / "digest.2")) << "a damaged digest is ignored, never trusted";
}

}  // namespace
}  // namespace coffer::replicate
