// The per-snapshot catalog: one line per entry with its metadata and the BLAKE2b of its content,
// so that ls/find/diff/check work without walking or reading the tree. Format:
// docs/formats/catalog.md. Paths are byte strings (any byte but NUL and '/'-separated).
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace coffer::snapshot {

enum class EntryType : char {
  regular = 'f',
  directory = 'd',
  symlink = 'l',
  fifo = 'p',
  socket = 's',
  char_device = 'c',
  block_device = 'b',
};
// From the S_IFMT bits of st_mode; nullopt for an unknown type.
std::optional<EntryType> entry_type_from_mode(std::uint32_t st_mode);
std::uint32_t mode_type_bits(EntryType t);

// BLAKE2b-256 of the content, in one of two forms (docs/formats/catalog.md): of the plain bytes,
// or (`blocks`) the block form of sparse files, which skips zero blocks.
struct ContentHash : std::array<std::uint8_t, 32> {
  bool blocks = false;
  friend bool operator==(const ContentHash&, const ContentHash&) = default;
};

struct CatalogEntry {
  std::string path;  // relative to the tree, "" for the root directory
  EntryType type = EntryType::regular;
  std::uint32_t mode = 0;  // permission bits incl. setuid/setgid/sticky (07777)
  std::uint32_t uid = 0, gid = 0;
  std::uint64_t size = 0;  // regular files: bytes; symlinks: target length; else 0
  std::int64_t mtime_sec = 0;
  std::uint32_t mtime_nsec = 0;
  std::uint64_t rdev = 0;           // devices only
  std::uint64_t xattr_digest = 0;   // 0: no extended attributes (see xattr_digest())
  std::uint64_t link_group = 0;     // 0: not hard-linked; else shared by the links of one inode
  std::optional<ContentHash> hash;  // regular files
  std::string link_target;          // symlinks
};

// Catalog text escaping: bytes outside 0x21..0x7e and '\' become \xHH.
std::string escape_path(std::string_view bytes);
// Inverse of escape_path; nullopt on a malformed escape.
std::optional<std::string> unescape_path(std::string_view text);

std::string format_entry(const CatalogEntry& e);
// Parses one line (without its newline); nullopt if it is not a valid entry.
std::optional<CatalogEntry> parse_entry(std::string_view line);

// Writes a catalog file sequentially (buffered); nothing is durable until the caller syncs.
class CatalogWriter {
 public:
  explicit CatalogWriter(const std::filesystem::path& path);
  CatalogWriter(const CatalogWriter&) = delete;
  ~CatalogWriter();
  void add(const CatalogEntry& e);
  void finish();  // flushes and closes; errors are thrown here, not lost in a destructor

 private:
  void flush();
  std::filesystem::path path_;
  int fd_ = -1;
  std::string buf_;
};

// A whole catalog in memory with an index by path, for the receiver's change detection.
class Catalog {
 public:
  Catalog() = default;
  Catalog(Catalog&&) = default;
  Catalog& operator=(Catalog&&) = default;
  Catalog(const Catalog&) = delete;  // the index points into the entries
  static Catalog load(const std::filesystem::path& path);
  // The text of a catalog read elsewhere (inside a closed image); `path` names it in errors.
  static Catalog parse(const std::string& text, const std::filesystem::path& path);
  const std::vector<CatalogEntry>& entries() const { return entries_; }
  const CatalogEntry* find(std::string_view path) const;

 private:
  std::vector<CatalogEntry> entries_;
  std::unordered_map<std::string_view, std::size_t> index_;
};

}  // namespace coffer::snapshot
