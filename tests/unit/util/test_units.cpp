#include <gtest/gtest.h>

#include "coffer/util/error.hpp"
#include "coffer/util/units.hpp"

using namespace coffer;

TEST(Units, ParseSize) {
  EXPECT_EQ(parse_size("4096", "x"), 4096u);
  EXPECT_EQ(parse_size("64K", "x"), 65536u);
  EXPECT_EQ(parse_size("64KiB", "x"), 65536u);
  EXPECT_EQ(parse_size("1.5G", "x"), 1536ull << 20);
  EXPECT_EQ(parse_size("2t", "x"), 2ull << 40);
  EXPECT_THROW(parse_size("", "x"), Error);
  EXPECT_THROW(parse_size("G", "x"), Error);
  EXPECT_THROW(parse_size("10X", "--size"), Error);
}

TEST(Units, ErrorNamesTheOption) {
  try {
    parse_size("ten", "--size");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--size"), std::string::npos);
    EXPECT_EQ(e.kind(), ErrorKind::usage);
  }
}

TEST(Units, FormatAndHex) {
  EXPECT_EQ(format_size(512), "512 B");
  EXPECT_EQ(format_size(64ull << 20), "64.0 MiB");
  unsigned char b[] = {0x00, 0xab, 0xff};
  EXPECT_EQ(to_hex(b, 3), "00abff");
}
