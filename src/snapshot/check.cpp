#include "coffer/snapshot/check.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>
#include <map>
#include <random>

#include "coffer/snapshot/catalog.hpp"
#include "coffer/snapshot/content_hash.hpp"
#include "coffer/snapshot/layout.hpp"
#include "coffer/snapshot/removal.hpp"
#include "coffer/util/error.hpp"
#include "coffer/util/fd.hpp"
#include "coffer/util/units.hpp"

namespace coffer::snapshot {
namespace fs = std::filesystem;
namespace {

// Opens below the tree without following any symlink: a planted link never makes check read
// (or report on) something outside the snapshot.
int open_in_tree(int treefd, const std::string& path, int flags) {
  open_how how{};
  how.flags = static_cast<std::uint64_t>(flags | O_CLOEXEC);
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  for (;;) {
    long fd = ::syscall(SYS_openat2, treefd, path.empty() ? "." : path.c_str(), &how, sizeof how);
    if (fd >= 0) return static_cast<int>(fd);
    if (errno == EINTR || errno == EAGAIN) continue;
    return -errno;
  }
}

struct Inode {
  std::vector<SnapshotPath> names;
  std::uint64_t nlink = 0, size = 0;
  std::optional<ContentHash> hash;
  bool hashes_disagree = false;
};

std::uint64_t key_of(const ContentHash& h) {
  std::uint64_t k = 0;
  std::memcpy(&k, h.data(), sizeof k);
  return k;
}

// Names in what is not a complete snapshot (an in-progress one, an interrupted removal) also
// hold links to the snapshots' inodes.
void count_other_names(const fs::path& dir, std::map<std::pair<dev_t, ino_t>, std::uint64_t>& out) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) return;
  for (auto it = fs::recursive_directory_iterator(dir, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    struct stat st;
    if (::lstat(it->path().c_str(), &st) == 0 && S_ISREG(st.st_mode)) ++out[{st.st_dev, st.st_ino}];
  }
}

}  // namespace

void check_host(const fs::path& repo, const std::string& host, const CheckOptions& opt,
                CheckReport& report) {
  FileLock lock = lock_host(repo, host);
  auto snaps = list_complete(repo, host);
  std::map<std::pair<dev_t, ino_t>, Inode> inodes;
  auto damage = [&](const SnapshotPath& where, std::string reason,
                    std::vector<SnapshotPath> shared = {}) {
    if (shared.empty()) shared.push_back(where);
    report.damage.push_back({host, where, std::move(reason), std::move(shared)});
  };
  std::vector<std::pair<std::size_t, std::pair<dev_t, ino_t>>> pending;
  for (const auto& s : snaps) {
    ++report.snapshots;
    Catalog cat = Catalog::load(s.catalog());
    UniqueFd tree = open_fd(s.tree(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    for (const auto& e : cat.entries()) {
      ++report.entries;
      SnapshotPath where{s.name, e.path};
      int fd = open_in_tree(tree.get(), e.path, O_PATH | O_NOFOLLOW);
      if (fd < 0) {
        damage(where,
               fd == -ENOENT ? "missing" : fmt::format("cannot be opened: {}", std::strerror(-fd)));
        continue;
      }
      UniqueFd guard(fd);
      struct stat st;
      if (::fstat(fd, &st) != 0) throw_errno("stat", s.tree() / e.path, errno);
      if ((st.st_mode & S_IFMT) != mode_type_bits(e.type)) {
        damage(where, fmt::format("type {:o} where the catalog has '{}'", st.st_mode & S_IFMT,
                                  static_cast<char>(e.type)));
        continue;
      }
      std::vector<std::string> bad;
      if ((st.st_mode & 07777) != e.mode)
        bad.push_back(fmt::format("mode {:04o} (catalog {:04o})", st.st_mode & 07777, e.mode));
      if ((e.type == EntryType::regular || e.type == EntryType::symlink) &&
          static_cast<std::uint64_t>(st.st_size) != e.size)
        bad.push_back(fmt::format("size {} (catalog {})", st.st_size, e.size));
      if (e.type != EntryType::directory &&
          (st.st_mtim.tv_sec != e.mtime_sec ||
           static_cast<std::uint32_t>(st.st_mtim.tv_nsec) != e.mtime_nsec))
        bad.push_back("mtime differs from the catalog");
      if (e.type == EntryType::symlink) {
        std::string target(static_cast<std::size_t>(st.st_size) + 1, '\0');
        ssize_t n = ::readlinkat(fd, "", target.data(), target.size());
        if (n < 0 || static_cast<std::string::size_type>(n) != e.link_target.size() ||
            target.compare(0, static_cast<std::size_t>(n), e.link_target) != 0)
          bad.push_back("symlink target differs from the catalog");
      }
      if (e.type == EntryType::regular) {
        Inode& in = inodes[{st.st_dev, st.st_ino}];
        in.names.push_back(where);
        in.nlink = st.st_nlink;
        in.size = static_cast<std::uint64_t>(st.st_size);
        if (!in.hash)
          in.hash = e.hash;
        else if (e.hash && *in.hash != *e.hash)
          in.hashes_disagree = true;
      }
      if (!bad.empty()) {
        std::string reason;
        for (const auto& b : bad) reason += (reason.empty() ? "" : ", ") + b;
        damage(where, reason);
        // Named later with every snapshot that shares the inode, once all are known.
        if (e.type == EntryType::regular)
          pending.push_back({report.damage.size() - 1, {st.st_dev, st.st_ino}});
      }
    }
  }
  for (const auto& [index, id] : pending) report.damage[index].shared = inodes[id].names;
  std::map<std::pair<dev_t, ino_t>, std::uint64_t> other;
  fs::path host_dir = repo / "hosts" / host;
  count_other_names(host_dir / ".in-progress", other);
  count_other_names(host_dir / ".removing", other);

  std::uint64_t seed = std::random_device{}();
  seed = (seed << 32) ^ std::random_device{}();
  for (auto& [id, in] : inodes) {
    std::uint64_t names = in.names.size();
    if (auto it = other.find(id); it != other.end()) names += it->second;
    if (in.nlink != names)
      damage(
          in.names.front(),
          fmt::format("link count {} but {} name(s) in the snapshots of {}", in.nlink, names, host),
          in.names);
    if (in.hashes_disagree)
      damage(in.names.front(), "one inode with different BLAKE2b in different catalogs", in.names);
    if (!opt.read_data || !in.hash) continue;
    std::uint64_t key = key_of(*in.hash);
    if (opt.subset_t && key % opt.subset_t != opt.subset_k - 1) continue;
    if (opt.percent > 0 && static_cast<double>((key ^ seed) % 1000000) >= opt.percent * 10000)
      continue;
    const SnapshotPath& first = in.names.front();
    fs::path tree = host_dir / first.snapshot / "tree";
    UniqueFd treefd = open_fd(tree, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    int fd = open_in_tree(treefd.get(), first.path, O_RDONLY | O_NOFOLLOW);
    if (fd < 0) {
      damage(first, fmt::format("cannot be read: {}", std::strerror(-fd)), in.names);
      continue;
    }
    UniqueFd file(fd);
    // The catalog says which form the hash has (the block form for sparse files).
    ContentHash h = hash_fd(fd, tree / first.path, in.hash->blocks);
    ++report.inodes_read;
    report.bytes_read += in.size;
    if (h != *in.hash)
      damage(first, "content does not match its BLAKE2b (bit rot or a change inside the vault)",
             in.names);
  }
}

}  // namespace coffer::snapshot
