#include "coffer/snapshot/removal.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>

#include "coffer/snapshot/layout.hpp"
#include "coffer/util/error.hpp"
#include "coffer/util/fd.hpp"
#include "coffer/util/log.hpp"

namespace coffer::snapshot {
namespace fs = std::filesystem;
namespace {

constexpr const char* kRemoving = ".removing";

// Directories waiting to be emptied, shared by the workers. The walk ends when the queue is
// empty and no worker is still reading a directory (which could add more).
class DirQueue {
 public:
  void push(std::string dir) {
    std::lock_guard lock(mu_);
    queue_.push_back(std::move(dir));
    cv_.notify_one();
  }
  // Next directory, or false when the walk is over.
  bool pop(std::string& out) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return !queue_.empty() || busy_ == 0 || failed_; });
    if (failed_ || queue_.empty()) {
      cv_.notify_all();
      return false;
    }
    out = std::move(queue_.front());
    queue_.pop_front();
    ++busy_;
    return true;
  }
  void done(std::vector<std::string>& emptied) {
    std::lock_guard lock(mu_);
    --busy_;
    for (auto& d : emptied) dirs_.push_back(std::move(d));
    emptied.clear();
    cv_.notify_all();
  }
  void fail(std::exception_ptr e) {
    std::lock_guard lock(mu_);
    if (!error_) error_ = e;
    failed_ = true;
    --busy_;
    cv_.notify_all();
  }
  void start(std::string root) { queue_.push_back(std::move(root)); }
  std::exception_ptr error() const { return error_; }
  std::vector<std::string>& dirs() { return dirs_; }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;
  std::vector<std::string> dirs_;  // every directory seen, to be removed once empty
  int busy_ = 0;
  bool failed_ = false;
  std::exception_ptr error_;
};

// Unlinks every non-directory in `dir` and queues its subdirectories.
std::uint64_t empty_directory(const std::string& dir, DirQueue& q) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) throw_errno("open directory", fs::path(dir), errno);
  DIR* d = ::fdopendir(fd);
  if (!d) {
    int err = errno;
    ::close(fd);
    throw_errno("read directory", fs::path(dir), err);
  }
  std::unique_ptr<DIR, int (*)(DIR*)> guard(d, ::closedir);
  std::uint64_t removed = 0;
  while (true) {
    errno = 0;
    dirent* e = ::readdir(d);
    if (!e) {
      if (errno != 0) throw_errno("read directory", fs::path(dir), errno);
      break;
    }
    std::string_view name = e->d_name;
    if (name == "." || name == "..") continue;
    bool is_dir = e->d_type == DT_DIR;
    if (e->d_type == DT_UNKNOWN) {
      struct stat st;
      if (::fstatat(fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        throw_errno("stat", fs::path(dir) / e->d_name, errno);
      is_dir = S_ISDIR(st.st_mode);
    }
    if (is_dir) {
      // A directory of the source may be read-only; ours to empty, and never shared.
      ::fchmodat(fd, e->d_name, 0700, 0);
      q.push(dir + "/" + e->d_name);
    } else {
      if (::unlinkat(fd, e->d_name, 0) != 0 && errno != ENOENT)
        throw_errno("remove", fs::path(dir) / e->d_name, errno);
      ++removed;
    }
  }
  return removed;
}

}  // namespace

std::uint64_t delete_tree_parallel(const fs::path& dir, unsigned threads) {
  struct stat st;
  if (::lstat(dir.c_str(), &st) != 0) {
    if (errno == ENOENT) return 0;
    throw_errno("remove", dir, errno);
  }
  if (!S_ISDIR(st.st_mode)) {
    if (::unlink(dir.c_str()) != 0) throw_errno("remove", dir, errno);
    return 1;
  }
  ::chmod(dir.c_str(), 0700);
  DirQueue q;
  q.start(dir.native());
  std::atomic<std::uint64_t> removed{0};
  auto work = [&] {
    std::string d;
    std::vector<std::string> emptied;
    while (q.pop(d)) {
      try {
        removed += empty_directory(d, q);
        emptied.push_back(std::move(d));
        q.done(emptied);
      } catch (...) {
        q.fail(std::current_exception());
        return;
      }
    }
  };
  std::vector<std::thread> pool;
  for (unsigned i = 0; i < std::max(1u, threads); ++i) pool.emplace_back(work);
  for (auto& t : pool) t.join();
  if (q.error()) std::rethrow_exception(q.error());
  // Deepest first: a path sorts after its parent, so reverse order removes children first.
  auto& dirs = q.dirs();
  std::sort(dirs.begin(), dirs.end(), std::greater<>());
  for (const auto& d : dirs) {
    if (::rmdir(d.c_str()) != 0 && errno != ENOENT)
      throw_errno("remove directory", fs::path(d), errno);
    ++removed;
  }
  return removed;
}

FileLock lock_host(const fs::path& repo, const std::string& host) {
  return FileLock(repo / "hosts" / host / ".lock");
}

RemovalStats finish_removals(const fs::path& repo, const std::string& host) {
  RemovalStats stats;
  fs::path area = repo / "hosts" / host / kRemoving;
  std::error_code ec;
  fs::directory_iterator it(area, ec);
  if (ec) {
    if (ec == std::errc::no_such_file_or_directory) return stats;
    throw_errno("list", area, ec.value());
  }
  std::vector<fs::path> left;
  for (const auto& e : it) left.push_back(e.path());
  std::sort(left.begin(), left.end());
  for (const auto& p : left) {
    log::info("finishing the removal of {} left by an interrupted run", p.filename().native());
    stats.entries += delete_tree_parallel(p);
    ++stats.snapshots;
    ++stats.leftovers;
  }
  ::rmdir(area.c_str());
  return stats;
}

RemovalStats remove_snapshots(const fs::path& repo, const std::string& host,
                              const std::vector<std::string>& names) {
  RemovalStats stats = finish_removals(repo, host);
  if (names.empty()) return stats;
  fs::path host_dir = repo / "hosts" / host;
  fs::path area = host_dir / kRemoving;
  if (::mkdir(area.c_str(), 0700) != 0 && errno != EEXIST)
    throw_errno("create directory", area, errno);
  // First every snapshot leaves hosts/NAME/ whole (one rename each), and the renames are made
  // durable; only then is anything deleted. A crash leaves each one listed whole or not at all.
  std::vector<fs::path> moved;
  for (const auto& name : names) {
    if (!parse_timestamp(name))
      fail(ErrorKind::failed, "remove snapshot", name, "not a snapshot name");
    fs::path from = host_dir / name, to = area / name;
    if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) != 0)
      throw_errno("move out of the way", from, errno);
    moved.push_back(to);
  }
  fsync_dir(host_dir);
  fsync_dir(area);
  for (const auto& p : moved) {
    stats.entries += delete_tree_parallel(p);
    ++stats.snapshots;
  }
  ::rmdir(area.c_str());  // tidy when empty; nothing depends on it
  return stats;
}

}  // namespace coffer::snapshot
