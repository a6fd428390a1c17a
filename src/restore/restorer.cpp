#include "restorer.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>

#include "coffer/snapshot/content_hash.hpp"
#include "coffer/util/error.hpp"
#include "coffer/util/signals.hpp"

namespace coffer::restore {
namespace fs = std::filesystem;
using snapshot::CatalogEntry;
using snapshot::EntryType;

namespace {
constexpr int kDirFlags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW;
constexpr std::string_view kStaging = ".coffer-restore.tmp";

transfer::EntryMetadata metadata_of(const CatalogEntry& e, const transfer::Xattrs& x) {
  return {e.type, e.mode, e.uid, e.gid, e.mtime_sec, e.mtime_nsec, &x};
}
}  // namespace

Restorer::Restorer(const RestoreRequest& request, const RestoreCallbacks& callbacks)
    : req_(request), cb_(callbacks) {
  meta_.can_chown = ::geteuid() == 0;  // not root: skipped and counted, reported once
  meta_.warn_once = false;
}

Restorer::~Restorer() {
  // An error or a signal leaves no temporaries; a kill -9 leaves them for the next run.
  if (staging_) {
    staging_.reset();
    remove_beneath(target_root_.get(), staging_name_);
  }
}

fs::path Restorer::shown(std::string_view rel) const {
  return rel.empty() ? req_.target : req_.target / std::string(rel);
}

void Restorer::report(Action a, const PlanEntry& p) {
  switch (a) {
    case Action::restored:
      ++res_.restored;
      break;
    case Action::unchanged:
      ++res_.unchanged;
      break;
    case Action::updated:
      ++res_.updated;
      break;
    case Action::skipped:
      ++res_.skipped;
      break;
    case Action::deleted:
      ++res_.deleted;
      break;
  }
  if (cb_.on_action) cb_.on_action(a, p.rel);
}

void Restorer::warn(std::string_view rel, std::string_view message) {
  ++res_.warnings;
  if (cb_.on_warning) cb_.on_warning(rel, message);
}

RestoreResult Restorer::run() {
  if (req_.remove_extra && req_.overwrite == Overwrite::refuse)
    fail(ErrorKind::usage, "restore", req_.target.native(), "--delete needs --overwrite");
  src_ = req_.source;
  if (!src_) {
    if (!fs::is_directory(req_.repo))
      fail(ErrorKind::missing, "open repository", req_.repo.native(), "no such directory");
    src_ = repository_source(req_.repo);
  }
  snap_ = resolve_snapshot(*src_, req_.snapshot, req_.name);
  res_.host = snap_.host;
  res_.snapshot = snap_.name;
  catalog_ = src_->catalog(snap_);
  const fs::path catalog_path = src_->catalog_path(snap_);
  check_catalog(catalog_, catalog_path);
  for (const auto& rule : req_.filter_rules) filter_.add_rule(rule);
  plan_ = make_plan(catalog_, normalize_snapshot_path(req_.path), filter_, catalog_path);
  if (req_.remove_extra && !plan_.root_is_dir)
    fail(ErrorKind::usage, "restore", req_.path, "--delete needs a directory to restore");
  res_.entries = plan_.entries.size();
  src_->open_tree(snap_);
  open_target();
  inodes_.assign(plan_.entries.size(), 0);
  placed_.assign(plan_.entries.size(), false);
  std::uint64_t last_bytes = 0;
  for (std::size_t i = 0; i < plan_.entries.size(); ++i) {
    check_interrupted("restore");
    process(i);
    if (cb_.on_progress && ((i & 255) == 0 || res_.bytes - last_bytes > (8u << 20))) {
      last_bytes = res_.bytes;
      cb_.on_progress(i + 1, plan_.entries.size(), res_.bytes);
    }
  }
  if (req_.remove_extra) delete_extra();
  if (staging_) {
    staging_.reset();
    if (::unlinkat(target_root_.get(), staging_name_.c_str(), AT_REMOVEDIR) != 0)
      throw_errno("remove", shown(staging_name_), errno);
  }
  if (!req_.dry_run) {
    finish_directories();
    // One flush of TARGET's file system instead of an fsync per file.
    if (::syncfs(target_root_.get()) != 0) throw_errno("syncfs", req_.target, errno);
    if (req_.verify) verify();
  }
  if (cb_.on_progress) cb_.on_progress(plan_.entries.size(), plan_.entries.size(), res_.bytes);
  res_.chown_skipped = meta_.chown_skipped;
  return res_;
}

void Restorer::open_target() {
  struct stat st;
  if (::stat(req_.target.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode))
      fail(ErrorKind::failed, "restore into", req_.target.native(), "not a directory");
    target_existed_ = true;
  } else if (errno != ENOENT) {
    throw_errno("restore into", req_.target, errno);
  } else if (req_.dry_run) {
    return;  // everything would be restored
  } else {
    std::error_code ec;
    fs::create_directories(req_.target, ec);
    if (ec) throw_errno("create", req_.target, ec.value());
  }
  // TARGET itself is the user's choice (it may be reached through a symlink); below it nothing
  // is followed.
  target_root_ = open_fd(req_.target, O_RDONLY | O_DIRECTORY);
  tdirs_.emplace(target_root_.get(), req_.target);
  staging_name_ = std::string(kStaging);
  while (plan_.rels.count(staging_name_)) staging_name_ += "_";
  if (target_existed_ && req_.overwrite == Overwrite::refuse) {
    int fd = ::dup(target_root_.get());
    DIR* d = fd < 0 ? nullptr : ::fdopendir(fd);
    if (!d) throw_errno("read directory", req_.target, errno);
    bool empty = true;
    while (dirent* de = ::readdir(d))
      if (std::strcmp(de->d_name, ".") != 0 && std::strcmp(de->d_name, "..") != 0) empty = false;
    ::closedir(d);
    if (!empty)
      fail(ErrorKind::failed, "restore into", req_.target.native(),
           "not empty (choose --overwrite never, if-changed or always)");
  }
  if (req_.dry_run) return;
  // What a killed restore left: only temporaries, never a file under its real name.
  remove_beneath(target_root_.get(), staging_name_);
  if (::mkdirat(target_root_.get(), staging_name_.c_str(), 0700) != 0)
    throw_errno("create", shown(staging_name_), errno);
  staging_ =
      open_fd_at(target_root_.get(), staging_name_.c_str(), kDirFlags, 0, shown(staging_name_));
}

void Restorer::process(std::size_t i) {
  const PlanEntry& p = plan_.entries[i];
  const CatalogEntry& e = *p.entry;
  struct stat st {};
  bool exists = false;
  int parent_fd = -1;
  bool is_root = p.rel.empty();
  if (is_root) {
    exists = target_existed_;
    if (exists && ::fstat(target_root_.get(), &st) != 0) throw_errno("stat", req_.target, errno);
  } else if (!target_root_ || new_dirs_.count(std::string(p.parent()))) {
    exists = false;  // below a directory this run creates
  } else {
    parent_fd = tdirs_->require(p.parent());
    std::string name(p.name());
    if (::fstatat(parent_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0)
      exists = true;
    else if (errno != ENOENT)
      throw_errno("stat", shown(p.rel), errno);
  }
  Action a = exists ? decide(p, exists, st, parent_fd) : Action::restored;
  if (e.type == EntryType::directory && (!exists || a == Action::updated) &&
      !(exists && S_ISDIR(st.st_mode)))
    new_dirs_.insert(p.rel);
  if (is_root && !target_existed_) a = Action::restored;
  if (req_.dry_run) {
    // What the run would leave in place, so that second names compare as it would.
    inodes_[i] = exists && (a == Action::unchanged || a == Action::skipped) ? st.st_ino : 0;
    placed_[i] = true;
    report(a, p);
    return;
  }
  if (a == Action::unchanged || a == Action::skipped) {
    inodes_[i] = st.st_ino;
    placed_[i] = true;
    if (e.type == EntryType::directory && a == Action::unchanged &&
        req_.overwrite != Overwrite::never)
      dirs_to_finish_.push_back(i);
    report(a, p);
    return;
  }
  write_entry(i, exists, st, parent_fd);
  if (placed_[i]) report(a, p);
}

Action Restorer::decide(const PlanEntry& p, bool exists, const struct stat& st, int parent_fd) {
  const CatalogEntry& e = *p.entry;
  if (!exists) return Action::restored;
  bool want_dir = e.type == EntryType::directory;
  switch (req_.overwrite) {
    case Overwrite::refuse:  // only TARGET itself, found empty
      return Action::restored;
    case Overwrite::never:
      if (want_dir && !S_ISDIR(st.st_mode))
        fail(ErrorKind::failed, "restore", shown(p.rel).native(),
             "TARGET has a non-directory where the snapshot has a directory (kept by --overwrite "
             "never)");
      return same(p, st, parent_fd) ? Action::unchanged : Action::skipped;
    case Overwrite::if_changed:
      return same(p, st, parent_fd) ? Action::unchanged : Action::updated;
    case Overwrite::always:
      return Action::updated;
  }
  return Action::updated;
}

bool Restorer::same(const PlanEntry& p, const struct stat& st, int parent_fd) {
  const CatalogEntry& e = *p.entry;
  if (snapshot::entry_type_from_mode(st.st_mode) != e.type) return false;
  if (e.type != EntryType::symlink && (st.st_mode & 07777) != e.mode) return false;
  if (meta_.can_chown && (st.st_uid != e.uid || st.st_gid != e.gid)) return false;
  if (st.st_mtim.tv_sec != e.mtime_sec ||
      static_cast<std::uint32_t>(st.st_mtim.tv_nsec) != e.mtime_nsec)
    return false;
  std::string name(p.name());
  switch (e.type) {
    case EntryType::regular:
      if (static_cast<std::uint64_t>(st.st_size) != e.size) return false;
      // A second name must be the very inode the first one has in TARGET.
      if (p.leader != kNoLeader && (!placed_[p.leader] || inodes_[p.leader] != st.st_ino))
        return false;
      break;
    case EntryType::symlink: {
      std::string target(static_cast<std::size_t>(st.st_size) + 1, '\0');
      ssize_t n = ::readlinkat(parent_fd, name.c_str(), target.data(), target.size());
      if (n < 0 || static_cast<std::size_t>(n) != e.link_target.size() ||
          target.compare(0, static_cast<std::size_t>(n), e.link_target) != 0)
        return false;
      break;
    }
    case EntryType::char_device:
    case EntryType::block_device:
      if (st.st_rdev != static_cast<dev_t>(e.rdev)) return false;
      break;
    default:
      break;
  }
  transfer::Xattrs x = p.rel.empty() ? transfer::read_xattrs_fd(target_root_.get())
                                     : transfer::read_xattrs_at(parent_fd, name);
  return transfer::xattr_digest(x) == e.xattr_digest;
}

transfer::Xattrs Restorer::snapshot_xattrs(const CatalogEntry& e) {
  transfer::Xattrs x;
  if (e.xattr_digest == 0) return x;  // none at backup: no need to ask the tree
  x = src_->xattrs(e.path);
  if (transfer::xattr_digest(x) != e.xattr_digest)
    warn(e.path, "xattrs in the snapshot differ from its catalog (B could not keep them all)");
  return x;
}

void Restorer::write_entry(std::size_t i, bool exists, const struct stat& st, int parent_fd) {
  const PlanEntry& p = plan_.entries[i];
  const CatalogEntry& e = *p.entry;
  if (e.type == EntryType::directory) {
    if (!p.rel.empty() && !(exists && S_ISDIR(st.st_mode))) {
      std::string name(p.name());
      if (exists) {
        if (int err = remove_beneath(parent_fd, name)) throw_errno("remove", shown(p.rel), err);
        tdirs_->forget(p.rel);
      }
      if (parent_fd < 0) parent_fd = tdirs_->require(p.parent());
      if (::mkdirat(parent_fd, name.c_str(), 0700) != 0)
        throw_errno("create directory", shown(p.rel), errno);
    }
    dirs_to_finish_.push_back(i);
    placed_[i] = true;
    return;
  }
  std::string tmp = std::to_string(tmp_counter_++);
  if (!build_in_staging(i, tmp)) return;
  if (parent_fd < 0) parent_fd = tdirs_->require(p.parent());
  std::string name(p.name());
  if (exists && S_ISDIR(st.st_mode)) {
    if (int err = remove_beneath(parent_fd, name)) throw_errno("remove", shown(p.rel), err);
    tdirs_->forget(p.rel);
    exists = false;
  }
  struct stat built;
  if (::fstatat(staging_.get(), tmp.c_str(), &built, AT_SYMLINK_NOFOLLOW) != 0)
    throw_errno("stat", shown(p.rel), errno);
  // Replaces a file TARGET had in one step; never replaces what appeared since the check.
  if (::renameat2(staging_.get(), tmp.c_str(), parent_fd, name.c_str(),
                  exists ? 0 : RENAME_NOREPLACE) != 0)
    throw_errno("move into place", shown(p.rel), errno);
  inodes_[i] = built.st_ino;
  placed_[i] = true;
}

bool Restorer::build_in_staging(std::size_t i, const std::string& tmp) {
  const PlanEntry& p = plan_.entries[i];
  const CatalogEntry& e = *p.entry;
  fs::path where = shown(p.rel);
  if (e.type == EntryType::regular && p.leader != kNoLeader && placed_[p.leader]) {
    const PlanEntry& l = plan_.entries[p.leader];
    int from = ::dup(tdirs_->require(l.parent()));
    if (from < 0) throw_errno("open directory", shown(l.parent()), errno);
    UniqueFd from_fd(from);
    std::string lname(l.name());
    if (::linkat(from_fd.get(), lname.c_str(), staging_.get(), tmp.c_str(), 0) != 0)
      throw_errno("hard link " + shown(l.rel).native() + " to", where, errno);
    return true;
  }
  transfer::Xattrs x = snapshot_xattrs(e);
  auto md = metadata_of(e, x);
  switch (e.type) {
    case EntryType::regular: {
      UniqueFd out = open_fd_at(staging_.get(), tmp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW,
                                0600, where);
      res_.bytes += src_->copy(e, out.get(), where);
      meta_.apply_fd(out.get(), md, where);
      return true;
    }
    case EntryType::symlink:
      if (::symlinkat(e.link_target.c_str(), staging_.get(), tmp.c_str()) != 0)
        throw_errno("create symlink", where, errno);
      break;
    default:
      if (::mknodat(staging_.get(), tmp.c_str(), snapshot::mode_type_bits(e.type) | 0600,
                    static_cast<dev_t>(e.rdev)) != 0) {
        int err = errno;
        if (err != EPERM) throw_errno("create special file", where, err);
        warn(p.rel, std::string("not restored: cannot create special file: ") + std::strerror(err));
        return false;
      }
      break;
  }
  meta_.apply_at(staging_.get(), tmp, md, where);
  return true;
}

void Restorer::finish_directories() {
  // Deepest first (reverse pre-order): writing into a directory changes its mtime.
  for (auto it = dirs_to_finish_.rbegin(); it != dirs_to_finish_.rend(); ++it) {
    const PlanEntry& p = plan_.entries[*it];
    int fd = transfer::open_beneath(target_root_.get(), p.rel, kDirFlags);
    if (fd < 0) throw_errno("open directory", shown(p.rel), -fd);
    UniqueFd dir(fd);
    transfer::Xattrs x = snapshot_xattrs(*p.entry);
    meta_.apply_fd(dir.get(), metadata_of(*p.entry, x), shown(p.rel));
  }
}

void Restorer::verify() {
  std::uint64_t bad = 0;
  std::string first;
  for (std::size_t i = 0; i < plan_.entries.size(); ++i) {
    const PlanEntry& p = plan_.entries[i];
    if (p.entry->type != EntryType::regular || !placed_[i] || !p.entry->hash) continue;
    check_interrupted("verify restore");
    int fd = transfer::open_beneath(target_root_.get(), p.rel, O_RDONLY | O_NOFOLLOW);
    if (fd < 0) throw_errno("open", shown(p.rel), -fd);
    UniqueFd f(fd);
    // From the disk, not from the pages just written (syncfs made them clean).
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    if (snapshot::hash_fd(fd, shown(p.rel), p.entry->hash->blocks) == *p.entry->hash) {
      ++res_.verified;
      continue;
    }
    if (bad++ == 0) first = shown(p.rel).native();
    warn(p.rel, "content differs from the snapshot's catalog (BLAKE2b)");
  }
  if (bad > 0)
    fail(ErrorKind::integrity, "verify", first,
         "content differs from the catalog's BLAKE2b" +
             (bad > 1 ? " (and " + std::to_string(bad - 1) + " more files)" : std::string()));
}

}  // namespace coffer::restore
