#include "coffer/replicate/manifest.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sodium.h>
#include <ctime>
#include <map>
#include <mutex>

#include "coffer/util/atomic_file.hpp"
#include "coffer/util/error.hpp"
#include "coffer/util/fd.hpp"
#include "coffer/util/units.hpp"
#include "wire.hpp"

namespace coffer::replicate {
namespace {

constexpr char kMagic[8] = {'C', 'F', 'M', 'A', 'N', 'I', 'F', '1'};
constexpr std::uint32_t kVersion = 2;  // 1 hashed blocks with BLAKE2b-256
constexpr std::uint64_t kMaxImageSize = 1ull
                                        << 50;  // 1 PiB: bounds what a hostile file can ask for

bool valid_block_size(std::uint32_t b) {
  return b >= 4096 && b <= (64u << 20) && (b & (b - 1)) == 0;
}

}  // namespace

std::vector<std::byte> encode_manifest_header(const ManifestHeader& h) {
  Encoder e;
  e.raw(kMagic, sizeof kMagic)
      .u32(kVersion)
      .u32(kManifestHeaderSize)
      .u64(h.generation)
      .i64(h.time)
      .u64(h.image_size)
      .u32(h.block_size)
      .u32(32)
      .u64(h.block_count())
      .u32(h.detect_block_size)
      .u32(0)
      .raw(h.replica_id.data(), 16)
      .raw(h.luks_uuid.data(), 16);
  e.zeros(kManifestHeaderSize - e.bytes.size());
  return std::move(e.bytes);
}

ManifestHeader decode_manifest_header(std::span<const std::byte> bytes, const std::string& what) {
  Decoder d(bytes, what);
  auto magic = d.raw(8);
  if (std::memcmp(magic.data(), kMagic, 8) != 0) d.malformed("not a coffer manifest (bad magic)");
  if (std::uint32_t v = d.u32(); v != kVersion)
    d.malformed(fmt::format("manifest format version {} is not supported (this coffer reads {})", v,
                            kVersion));
  if (d.u32() != kManifestHeaderSize) d.malformed("unexpected header size");
  ManifestHeader h;
  h.generation = d.u64();
  h.time = d.i64();
  h.image_size = d.u64();
  h.block_size = d.u32();
  if (d.u32() != 32) d.malformed("unexpected hash size");
  std::uint64_t count = d.u64();
  h.detect_block_size = d.u32();
  d.u32();
  std::memcpy(h.replica_id.data(), d.raw(16).data(), 16);
  std::memcpy(h.luks_uuid.data(), d.raw(16).data(), 16);
  if (!valid_block_size(h.block_size)) d.malformed("invalid block size");
  if (h.image_size > kMaxImageSize) d.malformed("image size out of range");
  if (count != h.block_count()) d.malformed("block count does not match the image size");
  return h;
}

std::vector<std::byte> Manifest::encode() const {
  std::vector<std::byte> out = encode_manifest_header(header);
  out.reserve(out.size() + entries.size() * 32 + kMacSize);
  for (const auto& h : entries) out.insert(out.end(), h.bytes.begin(), h.bytes.end());
  out.insert(out.end(), mac.bytes.begin(), mac.bytes.end());
  return out;
}

Manifest Manifest::decode(std::span<const std::byte> bytes, const std::string& what) {
  if (bytes.size() < kManifestHeaderSize) Decoder(bytes, what).malformed("shorter than its header");
  Manifest m;
  m.header = decode_manifest_header(bytes.first(kManifestHeaderSize), what);
  std::uint64_t count = m.header.block_count();
  if (bytes.size() != kManifestHeaderSize + count * 32 + kMacSize)
    Decoder(bytes, what)
        .malformed(fmt::format("size {} does not match {} entries", bytes.size(), count));
  Decoder d(bytes.subspan(kManifestHeaderSize), what);
  m.entries.resize(count);
  for (auto& e : m.entries) e = d.hash256();
  m.mac = d.hash256();
  return m;
}

Manifest Manifest::load(const std::filesystem::path& path) {
  std::string text = read_file(path, O_NOFOLLOW);  // on C, a planted link must not be read
  return decode(std::as_bytes(std::span(text.data(), text.size())), path.native());
}

void Manifest::save(const std::filesystem::path& path) const {
  AtomicFile file(path, 0644);
  file.write(encode());
  file.commit();
}

Hash256 Manifest::compute_mac(const Secret& mac_key) const {
  ensure_sodium();
  crypto_generichash_state st;
  crypto_generichash_init(&st, reinterpret_cast<const unsigned char*>(mac_key.data()),
                          mac_key.size(), 32);
  auto head = encode_manifest_header(header);
  crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(head.data()), head.size());
  crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(entries.data()),
                            entries.size() * sizeof(Hash256));
  Hash256 out;
  crypto_generichash_final(&st, reinterpret_cast<unsigned char*>(out.bytes.data()), 32);
  return out;
}

bool Manifest::mac_valid(const Secret& mac_key) const {
  Hash256 expected = compute_mac(mac_key);
  return sodium_memcmp(expected.bytes.data(), mac.bytes.data(), 32) == 0;
}

Secret derive_mac_key(const Secret& volume_key) {
  ensure_sodium();
  static_assert(crypto_kdf_KEYBYTES == 32);
  // crypto_kdf wants a 32-byte master key; a LUKS volume key is usually 64 bytes (XTS), so it
  // is first compressed with BLAKE2b under a domain-separating key.
  static constexpr char kDomain[] = "coffer replica manifest master v1";
  Secret master(crypto_kdf_KEYBYTES);
  crypto_generichash(reinterpret_cast<unsigned char*>(master.data()), master.size(),
                     reinterpret_cast<const unsigned char*>(volume_key.data()), volume_key.size(),
                     reinterpret_cast<const unsigned char*>(kDomain), sizeof kDomain - 1);
  Secret key(32);
  crypto_kdf_derive_from_key(reinterpret_cast<unsigned char*>(key.data()), key.size(), 1,
                             "cfrmanif", reinterpret_cast<const unsigned char*>(master.data()));
  return key;
}

const Hash256& zero_block_hash(std::uint32_t block_size) {
  static std::mutex mu;
  static std::map<std::uint32_t, Hash256> cache;
  std::lock_guard lock(mu);
  auto it = cache.find(block_size);
  if (it == cache.end()) {
    std::vector<std::byte> zeros(block_size);
    it = cache.emplace(block_size, strong_hash(zeros)).first;
  }
  return it->second;
}

Id16 parse_uuid(std::string_view text) {
  Id16 id{};
  std::size_t n = 0;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '-') continue;
    int v = nibble(text[i]);
    if (v < 0 || n >= 32) fail(ErrorKind::usage, "parse UUID", text, "not a UUID");
    id[n / 2] |= static_cast<std::byte>(n % 2 == 0 ? v << 4 : v);
    ++n;
  }
  if (n != 32) fail(ErrorKind::usage, "parse UUID", text, "not a UUID");
  return id;
}

std::string format_uuid(const Id16& id) {
  std::string hex = to_hex(id.data(), id.size());
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" +
         hex.substr(16, 4) + "-" + hex.substr(20);
}

std::string format_time(std::int64_t seconds) {
  std::time_t t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

}  // namespace coffer::replicate
