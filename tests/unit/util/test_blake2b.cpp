#include <gtest/gtest.h>
#include <string>
#include <thread>
#include <vector>

#include "coffer/util/blake2b.hpp"

using namespace coffer;

namespace {

std::string hex(std::span<const std::byte> b) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (std::byte x : b) {
    s += digits[std::to_integer<int>(x) >> 4];
    s += digits[std::to_integer<int>(x) & 15];
  }
  return s;
}

std::string hash_of(std::string_view text) {
  std::array<std::byte, 64> out;
  blake2b512(std::as_bytes(std::span(text.data(), text.size())), out);
  return hex(out);
}

}  // namespace

TEST(Blake2b512, MatchesRfc7693TestVector) {
  // RFC 7693, appendix A: BLAKE2b-512("abc").
  EXPECT_EQ(hash_of("abc"),
            "ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d1"
            "7d87c5392aab792dc252d5de4533cc9518d38aa8dbf1925ab92386edd4009923");
}

TEST(Blake2b512, SameAnswerOnEveryThread) {
  // Each thread keeps its own OpenSSL context; reuse must not leak state between inputs.
  std::string expect_abc = hash_of("abc"), expect_empty = hash_of("");
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i)
        if (hash_of(i % 2 ? "abc" : "") != (i % 2 ? expect_abc : expect_empty)) ++wrong;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong, 0);
}
