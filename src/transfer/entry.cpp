#include "entry.hpp"

#include <sys/stat.h>
#include <xxhash.h>

namespace coffer::transfer {
namespace {
enum Flags : std::uint8_t {
  kSameMode = 0x01,
  kSameUid = 0x02,
  kSameGid = 0x04,
  kHasXattrs = 0x08,
  kHardLink = 0x10,
  kSparse = 0x20,
  kSameSec = 0x40,
};
}

std::string_view FileEntry::name() const {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? std::string_view(path)
                                    : std::string_view(path).substr(slash + 1);
}

std::string_view FileEntry::parent() const {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? std::string_view() : std::string_view(path).substr(0, slash);
}

std::uint64_t xattr_digest(const Xattrs& xattrs) {
  if (xattrs.empty()) return 0;
  XXH3_state_t* st = XXH3_createState();
  XXH3_64bits_reset(st);
  for (const auto& [name, value] : xattrs) {
    std::uint64_t lens[2] = {name.size(), value.size()};
    XXH3_64bits_update(st, lens, sizeof lens);
    XXH3_64bits_update(st, name.data(), name.size());
    XXH3_64bits_update(st, value.data(), value.size());
  }
  std::uint64_t h = XXH3_64bits_digest(st);
  XXH3_freeState(st);
  return h == 0 ? 1 : h;  // 0 means "none"
}

void ListEncoder::encode(const FileEntry& e, Encoder& out) {
  std::size_t prefix = 0;
  std::size_t max = std::min(prev_path_.size(), e.path.size());
  while (prefix < max && prev_path_[prefix] == e.path[prefix]) ++prefix;
  std::uint32_t st_mode = snapshot::mode_type_bits(e.type) | e.mode;
  std::uint8_t flags = 0;
  if (e.is_follower()) {
    flags = kHardLink;
  } else {
    if (st_mode == prev_st_mode_) flags |= kSameMode;
    if (e.uid == prev_uid_) flags |= kSameUid;
    if (e.gid == prev_gid_) flags |= kSameGid;
    if (!e.xattrs.empty()) flags |= kHasXattrs;
    if (e.sparse) flags |= kSparse;
    if (e.mtime_sec == prev_sec_) flags |= kSameSec;
  }
  out.u8(flags);
  out.uvar(prefix);
  out.bytes(std::string_view(e.path).substr(prefix));
  prev_path_ = e.path;
  if (e.is_follower()) {
    out.uvar(e.leader);
    return;
  }
  if (!(flags & kSameMode)) out.uvar(st_mode);
  if (!(flags & kSameUid)) out.uvar(e.uid);
  if (!(flags & kSameGid)) out.uvar(e.gid);
  if (!(flags & kSameSec)) out.svar(e.mtime_sec - prev_sec_);
  out.uvar(e.mtime_nsec);
  prev_st_mode_ = st_mode;
  prev_uid_ = e.uid;
  prev_gid_ = e.gid;
  prev_sec_ = e.mtime_sec;
  if (e.type == EntryType::regular) out.uvar(e.size);
  if (e.type == EntryType::symlink) out.bytes(e.link_target);
  if (e.type == EntryType::char_device || e.type == EntryType::block_device) out.uvar(e.rdev);
  if (flags & kHasXattrs) {
    out.uvar(e.xattrs.size());
    for (const auto& [n, v] : e.xattrs) {
      out.bytes(n);
      out.bytes(v);
    }
  }
}

FileEntry ListDecoder::decode(Decoder& in, const std::vector<FileEntry>& entries) {
  FileEntry e;
  std::uint8_t flags = in.u8();
  std::uint64_t prefix = in.uvar();
  if (prefix > prev_path_.size()) in.malformed("bad path prefix in file list");
  e.path = prev_path_.substr(0, prefix);
  e.path += in.bytes();
  prev_path_ = e.path;
  if (flags & kHardLink) {
    std::uint64_t leader = in.uvar();
    if (leader >= entries.size() || entries[leader].type == EntryType::directory ||
        entries[leader].is_follower())
      in.malformed("bad hard link leader in file list");
    std::string path = std::move(e.path);
    e = entries[leader];
    e.path = std::move(path);
    e.leader = static_cast<std::uint32_t>(leader);
    return e;
  }
  std::uint32_t st_mode = flags & kSameMode ? prev_st_mode_ : static_cast<std::uint32_t>(in.uvar());
  e.uid = flags & kSameUid ? prev_uid_ : static_cast<std::uint32_t>(in.uvar());
  e.gid = flags & kSameGid ? prev_gid_ : static_cast<std::uint32_t>(in.uvar());
  e.mtime_sec = flags & kSameSec ? prev_sec_ : prev_sec_ + in.svar();
  std::uint64_t nsec = in.uvar();
  if (nsec >= 1000000000u) in.malformed("bad nanoseconds in file list");
  e.mtime_nsec = static_cast<std::uint32_t>(nsec);
  auto type = snapshot::entry_type_from_mode(st_mode);
  if (!type) in.malformed("unknown file type in file list");
  e.type = *type;
  e.mode = st_mode & 07777;
  prev_st_mode_ = st_mode;
  prev_uid_ = e.uid;
  prev_gid_ = e.gid;
  prev_sec_ = e.mtime_sec;
  if (e.type == EntryType::regular) {
    e.size = in.uvar();
    // A file must fit in off_t; anything larger is not a file size but a broken or hostile peer.
    if (e.size > static_cast<std::uint64_t>(INT64_MAX))
      in.malformed("file size out of range in file list");
  }
  if (e.type == EntryType::symlink) {
    e.link_target = in.bytes();
    e.size = e.link_target.size();
  }
  if (e.type == EntryType::char_device || e.type == EntryType::block_device) e.rdev = in.uvar();
  e.sparse = flags & kSparse;
  if (flags & kHasXattrs) {
    std::uint64_t n = in.uvar();
    for (std::uint64_t i = 0; i < n; ++i) {
      std::string name(in.bytes());
      std::string value(in.bytes());
      e.xattrs.emplace_back(std::move(name), std::move(value));
    }
  }
  return e;
}

bool valid_relative_path(std::string_view path) {
  if (path.empty()) return true;
  std::size_t start = 0;
  for (;;) {
    auto slash = path.find('/', start);
    auto comp = path.substr(
        start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (comp.empty() || comp == "." || comp == ".." || comp.find('\0') != std::string_view::npos)
      return false;
    if (slash == std::string_view::npos) return true;
    start = slash + 1;
  }
}

}  // namespace coffer::transfer
