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

TEST(Units, UtcDates) {
  EXPECT_EQ(utc_time(1970, 1, 2), 86400);
  EXPECT_EQ(parse_utc_date("2026-05-01", "x"), utc_time(2026, 5, 1));
  EXPECT_EQ(parse_utc_date("2026-05-01T03:04", "x"), utc_time(2026, 5, 1, 3, 4));
  EXPECT_EQ(parse_utc_date("2026-05-01T03:04:05Z", "x"), utc_time(2026, 5, 1, 3, 4, 5));
  EXPECT_EQ(parse_utc_date("2026-05-01 03:04:05", "x"), utc_time(2026, 5, 1, 3, 4, 5));
  for (const char* bad :
       {"", "2026", "2026-13-01", "2026-05-01X", "2026-05-01T3", "2026-05-01T03:04:05+02"})
    EXPECT_THROW(parse_utc_date(bad, "--not-older-than"), Error) << bad;
}
