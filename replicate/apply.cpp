// Applying a committed journal to C's image (docs/formats/journal.md, "Apply").
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <future>
#include <mutex>
#include <thread>

#include "coffer/replicate/manifest.hpp"
#include "coffer/util/atomic_file.hpp"
#include "coffer/util/background_sync.hpp"
#include "coffer/util/direct_io.hpp"
#include "coffer/util/log.hpp"
#include "journal.hpp"

namespace coffer::replicate {
namespace {

// Scattered blocks wait for the disk one write at a time: several threads keep it busy, each
// reading its own stretch of the journal and writing its records.
constexpr unsigned kApplyThreads = 8;
constexpr std::uint64_t kStretchBytes = 8 << 20;  // journal bytes per unit of work
constexpr std::size_t kReadChunk = 2 << 20;       // per-thread read size: one huge page

double seconds_between(std::chrono::steady_clock::time_point a,
                       std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

void punch_zeros(int fd, const std::filesystem::path& shown, std::uint64_t offset,
                 std::uint64_t length) {
  if (::fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                  static_cast<off_t>(length)) == 0)
    return;
  if (errno != EOPNOTSUPP && errno != ENOSYS) throw_errno("punch hole in", shown, errno);
  std::vector<std::byte> zeros(std::min<std::uint64_t>(length, 1 << 20));
  for (std::uint64_t done = 0; done < length;) {
    std::uint64_t n = std::min<std::uint64_t>(zeros.size(), length - done);
    pwrite_all(fd, std::span(zeros).first(n), static_cast<off_t>(offset + done), shown);
    done += n;
  }
}

// The payload of record `r`, which the journal was checked to hold.
std::span<const std::byte> read_payload(DirectReader& in, const ScannedRecord& r,
                                        const std::filesystem::path& journal) {
  auto payload = in.read(r.file_offset + kRecordHeaderSize, r.payload_size);
  if (payload.size() != r.payload_size)
    fail(ErrorKind::integrity, "apply journal", journal.native(), "record vanished while applying");
  return payload;
}

struct Files {
  int journal_fd;
  const std::filesystem::path& journal;
  int image_fd;
  const std::filesystem::path& image;
};

// Writes the data and zero records in `blocks` to the image. The records of one upload come in
// ascending order and never overlap, so stretches of them can go in any order at once; records
// that do overlap (never written by coffer, but the format allows them) are applied in order by
// one thread, so the last record for a byte wins.
void write_blocks(const Files& f, const std::vector<const ScannedRecord*>& blocks,
                  BackgroundSync& flusher) {
  bool disjoint = true;
  std::uint64_t end = 0;
  for (const ScannedRecord* r : blocks) {
    if (r->info.offset < end) disjoint = false;
    end = r->info.offset + r->info.length;
  }
  std::vector<std::pair<std::size_t, std::size_t>> stretches;
  for (std::size_t b = 0, bytes = 0, i = 0; i < blocks.size(); ++i) {
    bytes += blocks[i]->payload_size + kRecordHeaderSize;
    if (bytes >= kStretchBytes || i + 1 == blocks.size() || !disjoint) {
      if (!disjoint) i = blocks.size() - 1;  // one stretch of everything
      stretches.emplace_back(b, i + 1);
      b = i + 1;
      bytes = 0;
    }
  }
  std::atomic<std::size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  std::exception_ptr error;
  auto work = [&] {
    try {
      DirectReader in(f.journal_fd, f.journal, Io::direct_if_possible, kReadChunk);
      DirectWriter out(f.image_fd, f.image);
      for (std::size_t s; !failed && (s = next++) < stretches.size();) {
        for (std::size_t i = stretches[s].first; i < stretches[s].second; ++i) {
          const RecordInfo& r = blocks[i]->info;
          if (r.type == RecordType::zero) {
            punch_zeros(f.image_fd, f.image, r.offset, r.length);
            continue;
          }
          auto payload = read_payload(in, *blocks[i], f.journal);
          out.pwrite(payload, r.offset);
          flusher.wrote(payload.size());
        }
      }
    } catch (...) {
      std::lock_guard lock(mu);
      if (!error) error = std::current_exception();
      failed = true;
    }
  };
  const auto threads =
      static_cast<unsigned>(std::min<std::size_t>(kApplyThreads, stretches.size()));
  std::vector<std::thread> pool;
  for (unsigned t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace

std::uint64_t apply_journal(const std::filesystem::path& journal,
                            const std::filesystem::path& image,
                            const std::filesystem::path& manifest_path, ApplyHints hints,
                            UniqueFd* removed_journal) {
  UniqueFd jfd = open_fd(journal, O_RDONLY | O_NOFOLLOW);
  std::optional<ScannedJournal> scanned;
  if (!hints.written) scanned = scan_journal(jfd.get(), journal);
  const ScannedJournal& j = hints.written ? *hints.written : *scanned;
  if (!j.committed)
    fail(ErrorKind::integrity, "apply journal", journal.native(),
         "the committed journal is damaged: " + j.damage);
  const JournalHeader& h = j.header;
  std::span<const std::byte> commit(j.commit_payload);
  if (commit.size() != kManifestHeaderSize + kMacSize)
    fail(ErrorKind::integrity, "apply journal", journal.native(), "malformed commit record");
  Manifest next;
  next.header = decode_manifest_header(commit.first(kManifestHeaderSize), journal.native());
  std::memcpy(next.mac.bytes.data(), commit.data() + kManifestHeaderSize, kMacSize);
  if (next.header.generation != h.new_generation || next.header.image_size != h.new_size ||
      next.header.block_size != h.manifest_block_size)
    fail(ErrorKind::integrity, "apply journal", journal.native(),
         "commit record does not match the journal header");

  std::error_code ec;
  if (hints.current || std::filesystem::exists(manifest_path, ec)) {
    Manifest cur = hints.current ? std::move(*hints.current) : Manifest::load(manifest_path);
    if (cur.header.generation != h.base_generation && cur.header.generation != h.new_generation)
      fail(ErrorKind::integrity, "apply journal", journal.native(),
           fmt::format("it leads from generation {} to {}, but the manifest is generation {}",
                       h.base_generation, h.new_generation, cur.header.generation));
    if (cur.header.block_size != next.header.block_size)
      fail(ErrorKind::integrity, "apply journal", journal.native(), "manifest block size differs");
    next.entries = std::move(cur.entries);
  } else if (h.base_generation != 0) {
    fail(ErrorKind::integrity, "apply journal", journal.native(),
         fmt::format("it follows generation {}, but there is no manifest", h.base_generation));
  }

  // The manifest delta first (a few small records at the end): a damaged one fails the apply
  // before the image is touched.
  next.entries.resize(next.header.block_count(), zero_block_hash(next.header.block_size));
  std::vector<const ScannedRecord*> blocks;
  DirectReader in(jfd.get(), journal, Io::direct_if_possible, kReadChunk);
  for (const auto& r : j.records) {
    if (r.info.type == RecordType::data || r.info.type == RecordType::zero) {
      blocks.push_back(&r);
      continue;
    }
    if (r.info.type != RecordType::manifest_delta) continue;
    auto payload = read_payload(in, r, journal);
    Decoder d(payload, journal.native());
    for (std::uint32_t i = 0; i < r.info.length; ++i) {
      std::uint64_t index = d.u64();
      Hash256 hash = d.hash256();
      if (index >= next.entries.size())
        fail(ErrorKind::integrity, "apply journal", journal.native(),
             "manifest entry out of range");
      next.entries[index] = hash;
    }
  }

  const auto t0 = std::chrono::steady_clock::now();
  // The new manifest is written and flushed while the image is; it replaces the old one only
  // once the image is durable.
  AtomicFile new_manifest(manifest_path, 0644);
  auto manifest_written = std::async(std::launch::async, [&] {
    new_manifest.write(next.encode());
    fsync_fd(new_manifest.fd(), manifest_path);
  });
  UniqueFd img = open_fd(image, O_RDWR | O_CREAT | O_NOFOLLOW, 0644);
  if (::ftruncate(img.get(), static_cast<off_t>(h.new_size)) != 0)
    throw_errno("resize", image, errno);
  {
    BackgroundSync flusher(img.get());
    write_blocks(Files{jfd.get(), journal, img.get(), image}, blocks, flusher);
  }
  const auto t1 = std::chrono::steady_clock::now();
  fsync_fd(img.get(), image);
  log::debug("applied {} records to {}: {:.3f} s, fsync {:.3f} s", blocks.size(), image.native(),
             seconds_between(t0, t1), seconds_between(t1, std::chrono::steady_clock::now()));

  manifest_written.get();
  new_manifest.commit();
  if (::unlink(journal.c_str()) != 0) throw_errno("remove applied journal", journal, errno);
  fsync_dir(journal.parent_path());
  if (removed_journal) *removed_journal = std::move(jfd);
  return h.new_generation;
}

}  // namespace coffer::replicate
