// Little-endian encoding of the binary formats (manifest, digest, journal, protocol frames).
// The Decoder checks every read against the end of its input: a truncated or hostile file or
// frame from C becomes an Error naming what was being read, never an out-of-bounds read.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "coffer/replicate/hashes.hpp"
#include "coffer/util/error.hpp"

namespace coffer::replicate {

class Encoder {
 public:
  std::vector<std::byte> bytes;

  // Most encodings are small headers; reserving also keeps GCC 12's -Wstringop-overflow false
  // positive on chained vector inserts quiet at -O3.
  Encoder() { bytes.reserve(64); }

  Encoder& u8(std::uint8_t v) { return raw(&v, 1); }
  Encoder& u16(std::uint16_t v) { return le(v); }
  Encoder& u32(std::uint32_t v) { return le(v); }
  Encoder& u64(std::uint64_t v) { return le(v); }
  Encoder& i64(std::int64_t v) { return le(static_cast<std::uint64_t>(v)); }
  Encoder& raw(const void* p, std::size_t n) {
    auto* b = static_cast<const std::byte*>(p);
    bytes.insert(bytes.end(), b, b + n);
    return *this;
  }
  Encoder& raw(std::span<const std::byte> s) { return raw(s.data(), s.size()); }
  Encoder& hash(const Hash128& h) { return raw(h.bytes.data(), h.bytes.size()); }
  Encoder& hash(const Hash256& h) { return raw(h.bytes.data(), h.bytes.size()); }
  // u32 length + bytes
  Encoder& str(std::string_view s) {
    u32(static_cast<std::uint32_t>(s.size()));
    return raw(s.data(), s.size());
  }
  Encoder& zeros(std::size_t n) {
    bytes.insert(bytes.end(), n, std::byte{0});
    return *this;
  }

 private:
  template <typename T>
  Encoder& le(T v) {
    std::byte b[sizeof(T)];
    for (std::size_t i = 0; i < sizeof(T); ++i)
      b[i] = static_cast<std::byte>((v >> (8 * i)) & 0xff);
    return raw(b, sizeof(T));
  }
};

class Decoder {
 public:
  // `what` names the input in errors ("manifest /srv/r/manifest", "frame from host:dir").
  Decoder(std::span<const std::byte> data, std::string what, ErrorKind kind = ErrorKind::integrity)
      : data_(data), what_(std::move(what)), kind_(kind) {}

  std::uint8_t u8() { return static_cast<std::uint8_t>(take(1)[0]); }
  std::uint16_t u16() { return le<std::uint16_t>(); }
  std::uint32_t u32() { return le<std::uint32_t>(); }
  std::uint64_t u64() { return le<std::uint64_t>(); }
  std::int64_t i64() { return static_cast<std::int64_t>(le<std::uint64_t>()); }
  std::span<const std::byte> raw(std::size_t n) { return take(n); }
  Hash128 hash128() {
    Hash128 h;
    std::memcpy(h.bytes.data(), take(16).data(), 16);
    return h;
  }
  Hash256 hash256() {
    Hash256 h;
    std::memcpy(h.bytes.data(), take(32).data(), 32);
    return h;
  }
  std::string str(std::size_t max = 1 << 16) {
    std::uint32_t n = u32();
    if (n > max) malformed("string too long");
    auto s = take(n);
    return std::string(reinterpret_cast<const char*>(s.data()), s.size());
  }
  std::size_t remaining() const { return data_.size() - pos_; }
  std::size_t position() const { return pos_; }
  void expect_end() {
    if (remaining() != 0) malformed("unexpected trailing bytes");
  }
  [[noreturn]] void malformed(std::string_view why) const {
    fail(kind_, "decode", what_, std::string("malformed data: ") + std::string(why));
  }

 private:
  std::span<const std::byte> take(std::size_t n) {
    if (n > remaining()) malformed("truncated");
    auto s = data_.subspan(pos_, n);
    pos_ += n;
    return s;
  }
  template <typename T>
  T le() {
    auto b = take(sizeof(T));
    T v = 0;
    for (std::size_t i = 0; i < sizeof(T); ++i)
      v |= static_cast<T>(static_cast<T>(b[i]) << (8 * i));
    return v;
  }

  std::span<const std::byte> data_;
  std::size_t pos_ = 0;
  std::string what_;
  ErrorKind kind_;
};

}  // namespace coffer::replicate
