#include "replica_dir.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>

#include "coffer/util/atomic_file.hpp"
#include "coffer/util/log.hpp"

namespace coffer::replicate {
namespace {

constexpr std::string_view kMarker = "coffer replica 1\n";

// Every fixed name the helper opens, creates or renames onto.
constexpr const char* kNames[] = {"coffer-replica", "lock",    "image",
                                  "manifest",       "journal", "journal.partial"};

}  // namespace

void ReplicaDir::refuse_links() const {
  // Every open below also carries O_NOFOLLOW, which is what makes a link planted after this
  // check harmless; this check is what makes the refusal say what is wrong, and makes it before
  // anything is written (a link named "image" used to be reported as a 27-byte image).
  for (const char* name : kNames) {
    struct stat st {};
    std::filesystem::path path = dir_ / name;
    if (::lstat(path.c_str(), &st) != 0) {
      if (errno == ENOENT) continue;
      throw_errno("inspect", path, errno);
    }
    if (S_ISLNK(st.st_mode))
      fail(ErrorKind::failed, "serve replica", path.native(),
           "it is a symbolic link; coffer never follows links in a replica directory (remove it; "
           "the replica's files are plain files)");
    if (!S_ISREG(st.st_mode))
      fail(ErrorKind::failed, "serve replica", path.native(),
           "it is not a regular file; the replica's files are plain files (remove it)");
  }
}

ReplicaDir::ReplicaDir(std::filesystem::path dir) : dir_(std::move(dir)) {}

DirKind ReplicaDir::inspect(std::string& detail) const {
  std::error_code ec;
  auto st = std::filesystem::status(dir_, ec);
  if (ec || !std::filesystem::exists(st)) return DirKind::absent;
  if (!std::filesystem::is_directory(st)) {
    detail = "it is not a directory";
    return DirKind::foreign;
  }
  refuse_links();
  if (std::filesystem::exists(marker())) {
    std::string text = read_file(marker(), O_NOFOLLOW);
    if (text == kMarker) return DirKind::replica;
    detail = "its coffer-replica file names an unknown format";
    return DirKind::foreign;
  }
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir_))
    names.push_back(e.path().filename());
  if (names.empty()) return DirKind::empty;
  std::sort(names.begin(), names.end());
  detail = "it holds other files: ";
  for (std::size_t i = 0; i < names.size() && i < 3; ++i) detail += (i ? ", " : "") + names[i];
  if (names.size() > 3) detail += fmt::format(" and {} more", names.size() - 3);
  return DirKind::foreign;
}

void ReplicaDir::init() {
  if (::mkdir(dir_.c_str(), 0700) != 0 && errno != EEXIST)
    throw_errno("create replica directory", dir_, errno);
  lock();
  std::string detail;
  DirKind kind = inspect(detail);
  if (kind == DirKind::replica) return;
  // Only our lock file may be there: anything else appeared meanwhile and is not ours.
  std::error_code ec;
  std::size_t others = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir_, ec))
    others += e.path().filename() != "lock";
  if (others)
    fail(ErrorKind::failed, "make a replica in", dir_.native(), "the directory is not empty");
  write_file_atomic(marker(), kMarker, 0644);
}

void ReplicaDir::lock() {
  // A helper whose B has just said BYE may still be on its way out (B no longer waits for it):
  // give it a moment rather than refuse the next session, e.g. the verify after a replicate.
  if (!lock_) lock_ = std::make_unique<FileLock>(dir_ / "lock", std::chrono::milliseconds(3000));
}

std::optional<std::uint64_t> ReplicaDir::recover() {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir_, ec)) {
    std::string name = e.path().filename();
    if (name.starts_with("manifest.tmp.") || name.starts_with("coffer-replica.tmp.")) {
      log::debug("removing stale temporary {}", e.path().native());
      std::filesystem::remove(e.path(), ec);
    }
  }
  if (!std::filesystem::exists(journal())) return std::nullopt;
  log::info("applying the committed journal {} left by an interrupted run", journal().native());
  return apply_journal(journal(), image(), manifest());
}

ReplicaState ReplicaDir::state(std::optional<std::uint64_t> recovered) {
  ReplicaState s;
  s.kind = inspect(s.detail);
  s.recovered_generation = recovered;
  if (s.kind != DirKind::replica) return s;
  struct stat st {};
  if (::lstat(image().c_str(), &st) == 0) s.image_size = static_cast<std::uint64_t>(st.st_size);
  if (std::filesystem::exists(manifest())) {
    // Header and MAC only: B compares the MAC with its record; entries travel on request.
    try {
      UniqueFd fd = open_fd(manifest(), O_RDONLY | O_NOFOLLOW);
      std::vector<std::byte> head(kManifestHeaderSize);
      if (pread_full(fd.get(), head, 0, manifest()) != head.size())
        fail(ErrorKind::integrity, "read", manifest().native(), "shorter than its header");
      ManifestHeader h = decode_manifest_header(head, manifest().native());
      struct stat mst {};
      ::fstat(fd.get(), &mst);
      std::uint64_t expected = kManifestHeaderSize + h.block_count() * 32 + kMacSize;
      if (static_cast<std::uint64_t>(mst.st_size) != expected)
        fail(ErrorKind::integrity, "read", manifest().native(),
             fmt::format("size {} does not match its {} entries", mst.st_size, h.block_count()));
      std::vector<std::byte> mac(kMacSize);
      pread_full(fd.get(), mac, static_cast<off_t>(expected - kMacSize), manifest());
      s.manifest = h;
      std::memcpy(s.manifest_mac.bytes.data(), mac.data(), kMacSize);
    } catch (const Error& e) {
      s.detail = e.what();
    }
  }
  partial_.reset();
  if (std::filesystem::exists(partial())) {
    try {
      UniqueFd fd = open_fd(partial(), O_RDONLY | O_NOFOLLOW);
      ScannedJournal j = scan_journal(fd.get(), partial());
      PartialJournal p;
      p.header = j.header;
      p.bytes = j.valid_end;
      for (const auto& r : j.records) p.records.push_back(r.info);
      s.partial = std::move(p);
      partial_ = std::move(j);
    } catch (const Error& e) {
      log::warn("ignoring unusable partial upload: {}", e.what());
    }
  }
  return s;
}

}  // namespace coffer::replicate
