// AES-XTS-plain64 sector decryption against IEEE 1619-2007 test vectors (Annex B). The whole
// image against dm-crypt is checked in tests/uml/test_reader.cpp.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "coffer/reader/image.hpp"
#include "coffer/util/error.hpp"

using coffer::reader::XtsDecryptor;

namespace {
std::vector<std::byte> hex(const std::string& h) {
  std::vector<std::byte> out;
  for (std::size_t i = 0; i + 1 < h.size(); i += 2)
    out.push_back(static_cast<std::byte>(std::stoi(h.substr(i, 2), nullptr, 16)));
  return out;
}
}  // namespace

TEST(Xts, Ieee1619Vector1ZeroKeySectorZero) {
  std::vector<std::byte> key(32, std::byte{0});
  auto data = hex("917cf69ebd68b2ec9b9fe9a3eadda692cd43d2f59598ed858c02c2652fbf922e");
  XtsDecryptor x(key, 32);
  x.decrypt(data, 0);
  EXPECT_EQ(data, std::vector<std::byte>(32, std::byte{0}));
}

TEST(Xts, Ieee1619Vector2SectorNumberIsLittleEndianTweak) {
  auto key = hex("1111111111111111111111111111111122222222222222222222222222222222");
  auto data = hex("c454185e6a16936e39334038acef838bfb186fff7480adc4289382ecd6d394f0");
  XtsDecryptor x(key, 32);
  x.decrypt(data, 0x3333333333ULL);
  EXPECT_EQ(data, std::vector<std::byte>(32, std::byte{0x44}));
}

TEST(Xts, ConsecutiveSectorsUseConsecutiveIvs) {
  // Two 32-byte sectors: the second decrypts like vector 2 only at IV 0x3333333333.
  auto key = hex("1111111111111111111111111111111122222222222222222222222222222222");
  auto data =
      hex("917cf69ebd68b2ec9b9fe9a3eadda692cd43d2f59598ed858c02c2652fbf922e"
          "c454185e6a16936e39334038acef838bfb186fff7480adc4289382ecd6d394f0");
  XtsDecryptor x(key, 32);
  x.decrypt(data, 0x3333333332ULL);
  EXPECT_EQ(std::vector<std::byte>(data.begin() + 32, data.end()),
            std::vector<std::byte>(32, std::byte{0x44}));
}

TEST(Xts, RefusesPartialSectorsAndOddKeys) {
  std::vector<std::byte> key(32, std::byte{0});
  XtsDecryptor x(key, 32);
  std::vector<std::byte> data(48);
  EXPECT_THROW(x.decrypt(data, 0), coffer::Error);
  std::vector<std::byte> bad(24);
  EXPECT_THROW(XtsDecryptor y(bad, 32), coffer::Error);
}

TEST(Xts, IvStepNumbersSectorsIn512ByteUnits) {
  // With iv_step 8 (4 KiB sectors, LUKS2) the second 32-byte "sector" gets IV first_iv + 8.
  auto key = hex("1111111111111111111111111111111122222222222222222222222222222222");
  auto data =
      hex("917cf69ebd68b2ec9b9fe9a3eadda692cd43d2f59598ed858c02c2652fbf922e"
          "c454185e6a16936e39334038acef838bfb186fff7480adc4289382ecd6d394f0");
  XtsDecryptor x(key, 32);
  x.decrypt(data, 0x3333333333ULL - 8, 8);
  EXPECT_EQ(std::vector<std::byte>(data.begin() + 32, data.end()),
            std::vector<std::byte>(32, std::byte{0x44}));
}
