// The two places a snapshot is read from: a repository directory, and a closed image's file
// system (include/coffer/restore/source.hpp).
#include "coffer/restore/source.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "coffer/reader/fs.hpp"
#include "coffer/util/error.hpp"
#include "coffer/util/fd.hpp"
#include "dir_cache.hpp"

namespace coffer::restore {
namespace fs = std::filesystem;
using snapshot::CatalogEntry;
using snapshot::EntryType;

namespace {

constexpr int kDirFlags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW;

std::string_view name_of(std::string_view path) {
  auto slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}
std::string_view parent_of(std::string_view path) {
  auto slash = path.rfind('/');
  return slash == std::string_view::npos ? std::string_view() : path.substr(0, slash);
}

[[noreturn]] void mismatch(const fs::path& shown) {
  fail(ErrorKind::integrity, "read", shown.native(),
       "the snapshot's file does not match its catalog (type or size)");
}

class RepositorySource final : public TreeSource {
 public:
  explicit RepositorySource(const fs::path& repo) : repo_(repo), name_(repo.native()) {}

  const std::string& name() const override { return name_; }
  std::vector<std::string> hosts() const override { return snapshot::list_hosts(repo_); }
  std::vector<snapshot::SnapshotInfo> complete(std::string_view host) const override {
    return snapshot::list_complete(repo_, host);
  }
  fs::path catalog_path(const snapshot::SnapshotInfo& s) const override { return s.catalog(); }
  snapshot::Catalog catalog(const snapshot::SnapshotInfo& s) const override {
    return snapshot::Catalog::load(s.catalog());
  }
  void open_tree(const snapshot::SnapshotInfo& s) override {
    tree_ = s.tree();
    root_ = open_fd(tree_, kDirFlags);
    dirs_.emplace(root_.get(), tree_);
  }
  transfer::Xattrs xattrs(const std::string& path) override {
    if (path.empty()) return transfer::read_xattrs_fd(root_.get());
    return transfer::read_xattrs_at(dirs_->require(parent_of(path)), name_of(path));
  }
  std::uint64_t copy(const CatalogEntry& e, int out, const fs::path& where) override {
    int sfd = transfer::open_beneath(root_.get(), e.path, O_RDONLY | O_NOFOLLOW);
    if (sfd < 0) throw_errno("open", tree_ / e.path, -sfd, ErrorKind::integrity);
    UniqueFd src(sfd);
    struct stat st;
    if (::fstat(sfd, &st) != 0) throw_errno("stat", tree_ / e.path, errno);
    if (!S_ISREG(st.st_mode) || static_cast<std::uint64_t>(st.st_size) != e.size)
      mismatch(tree_ / e.path);
    return transfer::copy_sparse(sfd, out, e.size, where);
  }
  fs::path shown(const snapshot::SnapshotInfo& s, std::string_view path) const override {
    return path.empty() ? s.tree() : s.tree() / std::string(path);
  }

 private:
  fs::path repo_, tree_;
  std::string name_;
  UniqueFd root_;
  std::optional<DirCache> dirs_;
};

// Paths inside the image are looked up through a name -> inode map per directory, built from
// one listing, so a restore of a large directory does not scan it once per entry.
class ImageSource final : public TreeSource {
 public:
  ImageSource(std::shared_ptr<const reader::FileSystem> fs, std::string shown)
      : fs_(std::move(fs)), name_(std::move(shown)) {}

  const std::string& name() const override { return name_; }

  std::vector<std::string> hosts() const override {
    std::vector<std::string> out;
    auto dir = find("hosts");
    if (!dir || !S_ISDIR(fs_->stat(*dir).mode)) return out;
    for (const auto& e : fs_->list(*dir))
      if (snapshot::valid_host_name(e.name) && S_ISDIR(fs_->stat(e.ino).mode))
        out.push_back(e.name);
    std::sort(out.begin(), out.end());
    return out;
  }

  std::vector<snapshot::SnapshotInfo> complete(std::string_view host) const override {
    std::vector<snapshot::SnapshotInfo> out;
    if (!snapshot::valid_host_name(host)) return out;
    std::string hostdir = "hosts/" + std::string(host);
    auto dir = find(hostdir);
    if (!dir || !S_ISDIR(fs_->stat(*dir).mode)) return out;
    for (const auto& e : fs_->list(*dir)) {
      auto t = snapshot::parse_timestamp(e.name);
      if (!t || !S_ISDIR(fs_->stat(e.ino).mode)) continue;
      auto marker = find(hostdir + "/" + e.name + "/complete");
      if (!marker || !S_ISREG(fs_->stat(*marker).mode)) continue;
      out.push_back({std::string(host), e.name, hostdir + "/" + e.name, *t, {}});
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
    return out;
  }

  fs::path catalog_path(const snapshot::SnapshotInfo& s) const override {
    return name_ + ":" + s.catalog().native();
  }
  snapshot::Catalog catalog(const snapshot::SnapshotInfo& s) const override {
    fs::path shown = catalog_path(s);
    std::uint32_t ino = fs_->lookup(s.catalog().native());
    reader::Stat st = fs_->stat(ino);
    if (!S_ISREG(st.mode)) fail(ErrorKind::integrity, "read catalog", shown.native(), "not a file");
    std::string text(st.size, '\0');
    std::size_t got = fs_->read(ino, 0, {reinterpret_cast<std::byte*>(text.data()), text.size()});
    if (got != text.size())
      fail(ErrorKind::failed, "read catalog", shown.native(), "short read from the image");
    return snapshot::Catalog::parse(text, shown);
  }

  void open_tree(const snapshot::SnapshotInfo& s) override {
    tree_ = s.tree().native();
    inodes_.clear();
    listed_.clear();
    inodes_[""] = fs_->lookup(tree_);
  }

  transfer::Xattrs xattrs(const std::string& path) override {
    transfer::Xattrs x = fs_->xattrs(require(path));
    std::sort(x.begin(), x.end());
    return x;
  }

  std::uint64_t copy(const CatalogEntry& e, int out, const fs::path& where) override {
    std::uint32_t ino = require(e.path);
    reader::Stat st = fs_->stat(ino);
    fs::path src = shown_path(e.path);
    if (!S_ISREG(st.mode) || st.size != e.size) mismatch(src);
    // Only the mapped runs are written, so the holes of a sparse file stay holes.
    constexpr std::size_t kChunk = 1 << 20;
    std::vector<std::byte> buf(kChunk);
    std::uint64_t bytes = 0;
    fs_->will_read(ino);
    for (const reader::Extent& x : fs_->extents(ino)) {
      for (std::uint64_t at = x.offset; at < x.offset + x.length;) {
        auto want =
            static_cast<std::size_t>(std::min<std::uint64_t>(kChunk, x.offset + x.length - at));
        std::size_t got = fs_->read(ino, at, {buf.data(), want});
        if (got != want) fail(ErrorKind::failed, "read", src.native(), "short read from the image");
        pwrite_all(out, {buf.data(), got}, static_cast<off_t>(at), where);
        at += got;
        bytes += got;
      }
    }
    if (::ftruncate(out, static_cast<off_t>(e.size)) != 0) throw_errno("set size of", where, errno);
    return bytes;
  }

  fs::path shown(const snapshot::SnapshotInfo& s, std::string_view path) const override {
    std::string p = s.tree().native();
    if (!path.empty()) p += "/" + std::string(path);
    return name_ + ":" + p;
  }

 private:
  fs::path shown_path(std::string_view path) const {
    return name_ + ":" + tree_ + (path.empty() ? "" : "/" + std::string(path));
  }

  std::optional<std::uint32_t> find(const std::string& path) const {
    try {
      return fs_->lookup(path);
    } catch (const Error& e) {
      if (e.kind() == ErrorKind::missing) return std::nullopt;
      throw;
    }
  }

  // The inode of `path` below the tree, never through a symlink (the catalog was checked, but
  // the tree is what the image holds).
  std::uint32_t require(std::string_view path) {
    std::string key(path);
    if (auto it = inodes_.find(key); it != inodes_.end()) return it->second;
    std::string parent(parent_of(path));
    std::uint32_t dir = require(parent);
    if (!S_ISDIR(fs_->stat(dir).mode))
      fail(ErrorKind::integrity, "read", shown_path(parent).native(), "not a directory");
    if (listed_.insert(parent).second)
      for (const auto& e : fs_->list(dir))
        inodes_.emplace(parent.empty() ? e.name : parent + "/" + e.name, e.ino);
    auto it = inodes_.find(key);
    if (it == inodes_.end())
      fail(ErrorKind::integrity, "read", shown_path(path).native(),
           "in the snapshot's catalog but not in its tree");
    return it->second;
  }

  std::shared_ptr<const reader::FileSystem> fs_;
  std::string name_, tree_;
  std::unordered_map<std::string, std::uint32_t> inodes_;
  std::unordered_set<std::string> listed_;
};

}  // namespace

std::unique_ptr<TreeSource> repository_source(const fs::path& repo) {
  return std::make_unique<RepositorySource>(repo);
}

std::unique_ptr<TreeSource> image_source(std::shared_ptr<const reader::FileSystem> fs,
                                         std::string shown) {
  return std::make_unique<ImageSource>(std::move(fs), std::move(shown));
}

}  // namespace coffer::restore
