#include "coffer/snapshot/catalog.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>
#include <charconv>

#include "coffer/util/error.hpp"
#include "coffer/util/fd.hpp"

namespace coffer::snapshot {

std::optional<EntryType> entry_type_from_mode(std::uint32_t m) {
  switch (m & S_IFMT) {
    case S_IFREG:
      return EntryType::regular;
    case S_IFDIR:
      return EntryType::directory;
    case S_IFLNK:
      return EntryType::symlink;
    case S_IFIFO:
      return EntryType::fifo;
    case S_IFSOCK:
      return EntryType::socket;
    case S_IFCHR:
      return EntryType::char_device;
    case S_IFBLK:
      return EntryType::block_device;
    default:
      return std::nullopt;
  }
}

std::uint32_t mode_type_bits(EntryType t) {
  switch (t) {
    case EntryType::regular:
      return S_IFREG;
    case EntryType::directory:
      return S_IFDIR;
    case EntryType::symlink:
      return S_IFLNK;
    case EntryType::fifo:
      return S_IFIFO;
    case EntryType::socket:
      return S_IFSOCK;
    case EntryType::char_device:
      return S_IFCHR;
    case EntryType::block_device:
      return S_IFBLK;
  }
  return 0;
}

namespace {
constexpr char kHex[] = "0123456789abcdef";

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

void append_hex(std::string& out, std::uint64_t v, int digits) {
  for (int i = digits - 1; i >= 0; --i) out += kHex[(v >> (4 * i)) & 0xf];
}

template <typename T>
void append_num(std::string& out, T v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

// Splits the next space-separated field off `rest`.
std::string_view next_field(std::string_view& rest) {
  auto sp = rest.find(' ');
  std::string_view f = rest.substr(0, sp);
  rest = sp == std::string_view::npos ? std::string_view{} : rest.substr(sp + 1);
  return f;
}

template <typename T>
bool parse_num(std::string_view s, T& v, int base = 10) {
  if (s.empty()) return false;
  auto r = std::from_chars(s.data(), s.data() + s.size(), v, base);
  return r.ec == std::errc{} && r.ptr == s.data() + s.size();
}

bool parse_optional_hex(std::string_view s, std::uint64_t& v) {
  if (s == "-") {
    v = 0;
    return true;
  }
  return parse_num(s, v, 16);
}
}  // namespace

std::string escape_path(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (char ch : bytes) {
    auto c = static_cast<unsigned char>(ch);
    if (c > 0x20 && c < 0x7f && c != '\\') {
      out += ch;
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
  return out;
}

std::optional<std::string> unescape_path(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\\') {
      out += text[i];
      continue;
    }
    if (i + 3 >= text.size()) return std::nullopt;
    if (text[i + 1] != 'x') return std::nullopt;
    int hi = hex_value(text[i + 2]), lo = hex_value(text[i + 3]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
    i += 3;
  }
  return out;
}

std::string format_entry(const CatalogEntry& e) {
  std::string out;
  out.reserve(160 + e.path.size());
  out += static_cast<char>(e.type);
  out += ' ';
  char mode[8];
  auto r = std::to_chars(mode, mode + sizeof mode, e.mode & 07777u, 8);
  out.append(4 - static_cast<std::size_t>(r.ptr - mode), '0');
  out.append(mode, r.ptr);
  out += ' ';
  append_num(out, e.uid);
  out += ' ';
  append_num(out, e.gid);
  out += ' ';
  append_num(out, e.size);
  out += ' ';
  append_num(out, e.mtime_sec);
  out += '.';
  std::string ns = std::to_string(e.mtime_nsec);
  out.append(9 - std::min<std::size_t>(9, ns.size()), '0');
  out += ns;
  out += ' ';
  if (e.hash) {
    if (e.hash->blocks) out += "z:";
    for (auto b : *e.hash) {
      out += kHex[b >> 4];
      out += kHex[b & 0xf];
    }
  } else {
    out += '-';
  }
  out += ' ';
  if (e.xattr_digest)
    append_hex(out, e.xattr_digest, 16);
  else
    out += '-';
  out += ' ';
  if (e.link_group)
    append_num(out, e.link_group);
  else
    out += '-';
  out += ' ';
  if (e.type == EntryType::char_device || e.type == EntryType::block_device) {
    char buf[20];
    auto rd = std::to_chars(buf, buf + sizeof buf, e.rdev, 16);
    out.append(buf, rd.ptr);
  } else
    out += '-';
  out += ' ';
  out += e.path.empty() ? std::string(".") : escape_path(e.path);
  if (e.type == EntryType::symlink) {
    out += ' ';
    out += escape_path(e.link_target);
  }
  return out;
}

std::optional<CatalogEntry> parse_entry(std::string_view line) {
  CatalogEntry e;
  std::string_view rest = line;
  std::string_view type = next_field(rest);
  if (type.size() != 1 || std::string_view("fdlpscb").find(type[0]) == std::string_view::npos)
    return std::nullopt;
  e.type = static_cast<EntryType>(type[0]);
  if (!parse_num(next_field(rest), e.mode, 8) || e.mode > 07777) return std::nullopt;
  if (!parse_num(next_field(rest), e.uid) || !parse_num(next_field(rest), e.gid))
    return std::nullopt;
  if (!parse_num(next_field(rest), e.size)) return std::nullopt;
  std::string_view mtime = next_field(rest);
  auto dot = mtime.find('.');
  if (dot == std::string_view::npos || mtime.size() - dot - 1 != 9 ||
      !parse_num(mtime.substr(0, dot), e.mtime_sec) ||
      !parse_num(mtime.substr(dot + 1), e.mtime_nsec) || e.mtime_nsec >= 1000000000u)
    return std::nullopt;
  std::string_view hash = next_field(rest);
  if (hash != "-") {
    ContentHash h;
    if (hash.substr(0, 2) == "z:") {
      h.blocks = true;
      hash.remove_prefix(2);
    }
    if (hash.size() != 64) return std::nullopt;
    for (std::size_t i = 0; i < 32; ++i) {
      int hi = hex_value(hash[2 * i]), lo = hex_value(hash[2 * i + 1]);
      if (hi < 0 || lo < 0) return std::nullopt;
      h[i] = static_cast<std::uint8_t>(hi * 16 + lo);
    }
    e.hash = h;
  }
  if (!parse_optional_hex(next_field(rest), e.xattr_digest)) return std::nullopt;
  std::string_view group = next_field(rest);
  if (group != "-" && !parse_num(group, e.link_group)) return std::nullopt;
  if (!parse_optional_hex(next_field(rest), e.rdev)) return std::nullopt;
  std::string_view path = next_field(rest);
  if (path.empty()) return std::nullopt;
  if (path != ".") {
    auto p = unescape_path(path);
    if (!p) return std::nullopt;
    e.path = std::move(*p);
  }
  if (e.type == EntryType::symlink) {
    auto t = unescape_path(next_field(rest));
    if (!t) return std::nullopt;
    e.link_target = std::move(*t);
  }
  if (!rest.empty()) return std::nullopt;
  return e;
}

// Format 2 added the block form of hashes ("z:"); format 1 catalogs have none and still load.
constexpr std::string_view kHeader = "# coffer catalog 2\n";
constexpr std::string_view kHeader1 = "# coffer catalog 1\n";

CatalogWriter::CatalogWriter(const std::filesystem::path& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) throw_errno("create", path, errno);
  buf_.reserve(1 << 20);
  buf_ += kHeader;
}

CatalogWriter::~CatalogWriter() {
  if (fd_ >= 0) ::close(fd_);
}

void CatalogWriter::add(const CatalogEntry& e) {
  buf_ += format_entry(e);
  buf_ += '\n';
  if (buf_.size() >= (1u << 20)) flush();
}

void CatalogWriter::flush() {
  write_all(fd_, buf_, path_);
  buf_.clear();
}

void CatalogWriter::finish() {
  flush();
  int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) throw_errno("close", path_, errno);
}

Catalog Catalog::load(const std::filesystem::path& path) {
  return parse(read_file(path), path);
}

Catalog Catalog::parse(const std::string& text, const std::filesystem::path& path) {
  std::string_view rest = text;
  if (rest.substr(0, kHeader.size()) != kHeader && rest.substr(0, kHeader1.size()) != kHeader1)
    fail(ErrorKind::integrity, "read catalog", path.native(),
         "missing '# coffer catalog 2' header");
  rest.remove_prefix(kHeader.size());
  Catalog c;
  std::size_t line_no = 1;
  while (!rest.empty()) {
    ++line_no;
    auto nl = rest.find('\n');
    if (nl == std::string_view::npos)
      fail(ErrorKind::integrity, "read catalog", path.native(), "truncated last line");
    auto e = parse_entry(rest.substr(0, nl));
    if (!e)
      fail(ErrorKind::integrity, "read catalog", path.native(),
           "malformed line " + std::to_string(line_no));
    c.entries_.push_back(std::move(*e));
    rest.remove_prefix(nl + 1);
  }
  c.index_.reserve(c.entries_.size());
  for (std::size_t i = 0; i < c.entries_.size(); ++i) c.index_.emplace(c.entries_[i].path, i);
  return c;
}

const CatalogEntry* Catalog::find(std::string_view path) const {
  auto it = index_.find(path);
  return it == index_.end() ? nullptr : &entries_[it->second];
}

}  // namespace coffer::snapshot
