#include "receiver.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <unordered_map>
#include <vector>

#include "coffer/snapshot/catalog.hpp"
#include "coffer/snapshot/content_hash.hpp"
#include "coffer/snapshot/layout.hpp"
#include "coffer/util/error.hpp"
#include "coffer/util/log.hpp"
#include "coffer/util/signals.hpp"
#include "entry.hpp"
#include "file_fetcher.hpp"
#include "link_groups.hpp"
#include "link_worker.hpp"
#include "tree_writer.hpp"

namespace coffer::transfer {
namespace {

using snapshot::ContentHash;
constexpr std::uint64_t kDeltaMin = 512;
// Files above this size are checked against B's file system before they are requested.
constexpr std::uint64_t kProbeAbove = std::uint64_t{2} << 30;

enum class State : std::uint8_t { pending, linking, done, dropped };

// Phase timings for -v: where a run spends its time.
class PhaseClock {
 public:
  void mark(const char* phase) {
    auto now = std::chrono::steady_clock::now();
    log::debug("{}: {:.3f} s", phase, std::chrono::duration<double>(now - last_).count());
    last_ = now;
  }

 private:
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

class Receiver {
 public:
  Receiver(Channel& ch, const ReceiverOptions& o, const WarningSink& w)
      : ch_(ch), opts_(o), warn_(w) {}

  ReceiverStats run() {
    Frame f = ch_.receive();
    if (f.type == Msg::error) throw_peer_error(ch_, f);  // e.g. an empty source: no snapshot
    clock_.mark("first list message");
    ip_.emplace(opts_.repo, opts_.host, opts_.source);
    clock_.mark("in-progress snapshot");
    // Any complete snapshot is a valid link base, so one loaded before the lock is fine.
    PreviousSnapshot prev =
        opts_.prefetched ? opts_.prefetched->get() : load_previous(opts_.repo, opts_.host);
    prev_cat_ = std::move(prev.catalog);
    tw_.emplace(ip_->tree(), ip_->staging(), prev.tree, ip_->resume_base());
    fetch_.emplace(ch_, *tw_, entries_);
    clock_.mark("open snapshot and previous catalog");
    for (;;) {
      bool list_done = handle_list_frame(f);
      fetch_->pump();
      if (list_done) break;
      check_interrupted("receiving the file list");
      f = ch_.receive();
    }
    end_of_list();
    clock_.mark("file list (links, directories)");
    return finish_transfer();
  }

 private:
  void warn(std::string_view path, std::string_view message) {
    ++stats_.warnings;
    if (warn_) warn_(path, message);
  }

  bool handle_list_frame(const Frame& f) {
    switch (f.type) {
      case Msg::list: {
        Decoder d(f.payload, ch_.peer());
        while (!d.at_end()) {
          entries_.push_back(dec_.decode(d, entries_));
          hashes_.emplace_back();
          state_.push_back(State::pending);
          add_entry(static_cast<std::uint32_t>(entries_.size() - 1));
        }
        return false;
      }
      case Msg::warning:
        record_warning(f);
        return false;
      case Msg::list_end: {
        Decoder d(f.payload, ch_.peer());
        if (d.uvar() != entries_.size()) d.malformed("file list count does not match");
        if (entries_.empty()) d.malformed("empty file list");
        return true;
      }
      default:
        ch_.unexpected(f, "the file list");
    }
  }

  void record_warning(const Frame& f) {
    Decoder d(f.payload, ch_.peer());
    std::string path(d.bytes());
    std::string msg(d.bytes());
    warn(path, msg);
  }

  void add_entry(std::uint32_t id) {
    FileEntry& e = entries_[id];
    if (id == 0) {
      if (!e.path.empty() || e.type != EntryType::directory)
        fail(ErrorKind::failed, "read protocol from", ch_.peer(),
             "the list does not start with the root directory");
      dirs_.emplace("", 0);
      state_[0] = State::done;
      return;
    }
    if (e.path.empty() || !valid_relative_path(e.path))
      fail(ErrorKind::failed, "read protocol from", ch_.peer(),
           "unsafe path in file list: " + snapshot::escape_path(e.path));
    auto parent = dirs_.find(std::string(e.parent()));
    if (parent == dirs_.end())
      fail(ErrorKind::failed, "read protocol from", ch_.peer(),
           "entry outside a listed directory: " + snapshot::escape_path(e.path));
    switch (e.type) {
      case EntryType::directory:
        tw_->make_directory(e);
        dirs_.emplace(e.path, id);
        state_[id] = State::done;
        return;
      case EntryType::symlink:
        tw_->make_symlink(e);
        state_[id] = State::done;
        return;
      case EntryType::regular:
        if (e.is_follower())
          add_follower(id);
        else
          add_regular(id, parent->second);
        return;
      default: {
        if (e.is_follower()) {
          add_follower(id);
          return;
        }
        int err = 0;
        if (tw_->make_special(e, err)) {
          state_[id] = State::done;
        } else {
          state_[id] = State::dropped;
          warn(e.path, std::string("cannot create special file: ") + std::strerror(err));
        }
        return;
      }
    }
  }

  void add_follower(std::uint32_t id) {
    std::uint32_t leader = entries_[id].leader;
    if (has_followers_.size() < entries_.size()) has_followers_.resize(entries_.size() * 2);
    has_followers_[leader] = true;
    if (state_[leader] == State::done)
      link_follower(leader, id);
    else if (state_[leader] == State::pending || state_[leader] == State::linking)
      followers_[leader].push_back(id);
    else
      drop_follower(id);
  }

  void drop_follower(std::uint32_t id) {
    state_[id] = State::dropped;
    warn(entries_[id].path, "not kept: the file it is a hard link of could not be copied");
  }

  void link_follower(std::uint32_t leader, std::uint32_t id) {
    if (groups_.link(*tw_, entries_, leader, id)) ++stats_.copied;  // EMLINK: a fresh copy
    state_[id] = State::done;
  }

  void done(std::uint32_t id, const std::optional<ContentHash>& h) {
    hashes_[id] = h;
    state_[id] = State::done;
    auto it = followers_.find(id);
    if (it == followers_.end()) return;
    for (auto f : it->second) link_follower(id, f);
    followers_.erase(it);
  }

  void add_regular(std::uint32_t id, std::uint32_t dir_id) {
    FileEntry& e = entries_[id];
    std::uint64_t xd = xattr_digest(e.xattrs);
    const snapshot::CatalogEntry* p = prev_cat_ ? prev_cat_->find(e.path) : nullptr;
    bool prev_regular = p && p->type == EntryType::regular;
    bool same_content = prev_regular && p->size == e.size && p->mtime_sec == e.mtime_sec &&
                        p->mtime_nsec == e.mtime_nsec && p->hash;
    DirFds& d = tw_->dir(e.parent());
    if (same_content && p->mode == e.mode && p->uid == e.uid && p->gid == e.gid &&
        p->xattr_digest == xd && d.prev) {
      // Unchanged: the link thread makes the hard link; a failure comes back in end_of_list().
      links_.add(dir_id, d.prev.get(), d.tree.get(), id, std::string(e.name()));
      hashes_[id] = p->hash;
      state_[id] = State::linking;
      linking_.push_back(id);
      ++stats_.linked;
      return;
    }
    fetch_or_copy(id, p, xd);
  }

  // A regular file that cannot simply be linked to the previous snapshot.
  void fetch_or_copy(std::uint32_t id, const snapshot::CatalogEntry* p, std::uint64_t xd) {
    FileEntry& e = entries_[id];
    bool prev_regular = p && p->type == EntryType::regular;
    bool same_content = prev_regular && p->size == e.size && p->mtime_sec == e.mtime_sec &&
                        p->mtime_nsec == e.mtime_nsec && p->hash;
    if (try_resume(id, xd)) return;
    if (same_content) {
      // Same content, other metadata (or the link count is full): a copy on B, nothing sent.
      int fd = open_in(tw_->dir(e.parent()).prev.get(), e);
      if (fd >= 0) {
        UniqueFd src(fd);
        tw_->copy_into(src.get(), e, id);
        ++stats_.copied;
        done(id, p->hash);
        return;
      }
    }
    if (e.size == 0) {
      tw_->make_empty(e, id);
      done(id, snapshot::ContentHasher().finish());
      return;
    }
    if (e.size > kProbeAbove) {
      // A size B's file system cannot hold (ext4: 16 TiB) is found before anything travels.
      if (int err = tw_->can_hold(id, e.size); err != 0) {
        if (err != EFBIG) throw_errno("create staging file for", tw_->shown(e.path), err);
        state_[id] = State::dropped;
        warn(e.path, "not kept: " + std::to_string(e.size) +
                         " bytes is more than B's file system holds (" + std::strerror(err) + ")");
        return;
      }
    }
    bool delta = prev_regular && !e.sparse && e.size >= kDeltaMin && p->size >= kDeltaMin;
    fetch_->request(id, delta);
  }

  // Waits for the link thread; what it could not link is copied (EMLINK) or fetched.
  void end_of_list() {
    std::vector<LinkWorker::Failure> failed = links_.drain();
    std::unordered_map<std::uint32_t, int> errs;
    for (const auto& f : failed) errs.emplace(f.id, f.err);
    for (auto id : linking_) {
      auto it = errs.find(id);
      if (it == errs.end()) {
        done(id, hashes_[id]);
        continue;
      }
      --stats_.linked;
      state_[id] = State::pending;
      FileEntry& e = entries_[id];
      if (it->second == EMLINK) {
        int fd = open_in(tw_->dir(e.parent()).prev.get(), e);
        if (fd < 0) throw_errno("open", tw_->shown(e.path), -fd);
        UniqueFd src(fd);
        tw_->copy_into(src.get(), e, id);
        ++stats_.copied;
        done(id, hashes_[id]);
      } else if (it->second == ENOENT) {
        hashes_[id].reset();
        fetch_or_copy(id, nullptr, xattr_digest(e.xattrs));  // the previous file is gone
      } else {
        throw_errno("link", tw_->shown(e.path), it->second);
      }
    }
    linking_.clear();
  }

  bool try_resume(std::uint32_t id, std::uint64_t xd) {
    FileEntry& e = entries_[id];
    DirFds& d = tw_->dir(e.parent());
    if (!d.resume) return false;
    std::string name(e.name());
    struct stat st;
    if (::fstatat(d.resume.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 ||
        !S_ISREG(st.st_mode))
      return false;
    bool owners = !tw_->metadata().can_chown || (st.st_uid == e.uid && st.st_gid == e.gid);
    if (static_cast<std::uint64_t>(st.st_size) != e.size || st.st_mtim.tv_sec != e.mtime_sec ||
        static_cast<std::uint32_t>(st.st_mtim.tv_nsec) != e.mtime_nsec ||
        (st.st_mode & 07777) != e.mode || !owners ||
        xattr_digest(read_xattrs_at(d.resume.get(), name)) != xd)
      return false;
    int fd = open_in(d.resume.get(), e);
    if (fd < 0) return false;
    UniqueFd src(fd);
    ContentHash h = snapshot::hash_fd(src.get(), tw_->shown(e.path), e.sparse);
    int err = tw_->link_from(d.resume.get(), e);
    if (err == EMLINK)
      tw_->copy_into(src.get(), e, id);
    else if (err != 0)
      throw_errno("link", tw_->shown(e.path), err);
    ++stats_.resumed;
    done(id, h);
    return true;
  }

  // The answer to a request is complete: the file is in the tree, or A could not send it.
  void file_received(const FileFetcher::Received& r) {
    if (!r.hash) {
      state_[r.id] = State::dropped;
      if (auto it = followers_.find(r.id); it != followers_.end()) {
        for (auto fl : it->second) drop_follower(fl);
        followers_.erase(it);
      }
      return;
    }
    if (r.delta)
      ++stats_.delta_files;
    else
      ++stats_.data_files;
    done(r.id, r.hash);
  }

  ReceiverStats finish_transfer() {
    fetch_->pump();
    while (!fetch_->idle()) {
      Frame f = ch_.receive();
      switch (f.type) {
        case Msg::file_begin:
          fetch_->begin_file(f);
          break;
        case Msg::data:
          fetch_->file_data(f);
          break;
        case Msg::delta:
          fetch_->file_delta(f);
          break;
        case Msg::file_end:
          file_received(fetch_->end_file(f));
          fetch_->pump();
          break;
        case Msg::warning:
          record_warning(f);
          break;
        default:
          ch_.unexpected(f, "file transfer");
      }
      check_interrupted("receiving files");
    }
    ch_.send(Msg::finish, {});
    for (;;) {
      Frame f = ch_.receive();
      if (f.type == Msg::warning) {
        record_warning(f);
        continue;
      }
      if (f.type != Msg::done) ch_.unexpected(f, "the end of the transfer");
      break;
    }
    clock_.mark("file data");
    for (auto& [leader, list] : followers_)
      for (auto id : list) drop_follower(id);
    followers_.clear();
    for (std::size_t i = entries_.size(); i-- > 0;)
      if (entries_[i].type == EntryType::directory) tw_->finish_directory(entries_[i]);
    clock_.mark("directory metadata");
    write_catalog();
    clock_.mark("catalog");
    stats_.bytes_received = ch_.bytes_in();
    stats_.bytes_sent = ch_.bytes_out();
    snapshot::Marker m;
    m.source = opts_.source;
    m.started = ip_->started();
    m.finished = std::time(nullptr);
    m.entries = stats_.entries;
    m.bytes = stats_.bytes_total;
    m.warnings = stats_.warnings;
    stats_.snapshot = ip_->publish(m).name;
    clock_.mark("flush and publish");
    Encoder e;
    encode_summary(stats_, e);
    ch_.send(Msg::summary, e.data());
    ch_.flush();
    return stats_;
  }

  void write_catalog() {
    snapshot::CatalogWriter w(ip_->catalog());
    has_followers_.resize(entries_.size());
    for (std::uint32_t i = 0; i < entries_.size(); ++i) {
      if (state_[i] != State::done) continue;
      const FileEntry& e = entries_[i];
      snapshot::CatalogEntry c =
          catalog_entry(e, i, e.is_follower() ? hashes_[e.leader] : hashes_[i], has_followers_[i]);
      if (e.is_follower()) c.size = entries_[e.leader].size;
      if (e.type == EntryType::regular) stats_.bytes_total += c.size;
      ++stats_.entries;
      w.add(c);
    }
    w.finish();
  }

  Channel& ch_;
  const ReceiverOptions& opts_;
  const WarningSink& warn_;
  std::optional<snapshot::InProgress> ip_;
  std::optional<snapshot::Catalog> prev_cat_;
  std::optional<TreeWriter> tw_;
  std::vector<FileEntry> entries_;
  std::vector<std::optional<ContentHash>> hashes_;
  std::vector<State> state_;
  std::vector<bool> has_followers_;
  std::unordered_map<std::string, std::uint32_t> dirs_;
  std::unordered_map<std::uint32_t, std::vector<std::uint32_t>> followers_;
  std::optional<FileFetcher> fetch_;
  ListDecoder dec_;
  ReceiverStats stats_;
  PhaseClock clock_;
  LinkWorker links_;
  LinkGroups groups_;
  std::vector<std::uint32_t> linking_;
};

}  // namespace

ReceiverStats run_receiver(Channel& ch, const ReceiverOptions& options,
                           const WarningSink& on_warning) {
  try {
    if (options.dry_run) return run_dry_receiver(ch, options, on_warning);
    return Receiver(ch, options, on_warning).run();
  } catch (const Error& e) {
    send_error(ch, e.what());
    throw;
  }
}

}  // namespace coffer::transfer
