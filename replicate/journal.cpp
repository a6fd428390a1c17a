#include "journal.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <cerrno>

#include "coffer/util/log.hpp"

namespace coffer::replicate {
namespace {

constexpr char kMagic[8] = {'C', 'F', 'J', 'O', 'U', 'R', 'N', '1'};
constexpr std::uint32_t kVersion = 1;
constexpr std::uint32_t kRecordMagic = 0x43455243;  // "CREC" little-endian

std::vector<std::byte> encode_file_header(const JournalHeader& h) {
  Encoder e;
  e.raw(kMagic, 8).u32(kVersion).u32(kJournalHeaderSize).raw(encode_journal_header(h));
  e.hash(fast_hash(e.bytes));
  return std::move(e.bytes);
}

std::vector<std::byte> encode_record_header(RecordType type, std::uint64_t offset,
                                            std::uint32_t length, std::uint32_t payload_size,
                                            const Hash128& checksum) {
  Encoder e;
  e.u32(kRecordMagic).u8(static_cast<std::uint8_t>(type)).zeros(3).u64(offset).u32(length);
  e.u32(payload_size).hash(checksum);
  return std::move(e.bytes);
}

}  // namespace

ScannedJournal scan_journal(int fd, const std::filesystem::path& shown) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw_errno("stat", shown, errno);
  const auto size = static_cast<std::uint64_t>(st.st_size);
  DirectReader in(fd, shown);
  std::span<const std::byte> buf = in.read(0, kJournalHeaderSize);
  if (buf.size() != kJournalHeaderSize)
    fail(ErrorKind::integrity, "read journal", shown.native(), "shorter than its header");
  Decoder d(buf, shown.native());
  if (std::memcmp(d.raw(8).data(), kMagic, 8) != 0) d.malformed("not a coffer journal");
  if (d.u32() != kVersion) d.malformed("unsupported journal version");
  if (d.u32() != kJournalHeaderSize) d.malformed("unexpected header size");
  ScannedJournal j;
  j.header = decode_journal_header(d);
  if (d.hash128() != fast_hash(buf.first(kJournalHeaderSize - 16)))
    d.malformed("header checksum mismatch");

  std::uint64_t pos = kJournalHeaderSize;
  j.valid_end = pos;
  while (pos < size) {
    std::span<const std::byte> head = in.read(pos, kRecordHeaderSize);
    if (head.size() != kRecordHeaderSize) {
      j.damage = fmt::format("record header at byte {} is truncated", pos);
      break;
    }
    Decoder r(head, shown.native());
    std::uint32_t magic = r.u32();
    auto type = static_cast<RecordType>(r.u8());
    r.raw(3);
    ScannedRecord rec;
    rec.info.type = type;
    rec.info.offset = r.u64();
    rec.info.length = r.u32();
    rec.payload_size = r.u32();
    rec.info.checksum = r.hash128();
    rec.file_offset = pos;
    if (magic != kRecordMagic || type < RecordType::data || type > RecordType::commit) {
      j.damage = fmt::format("no valid record at byte {}", pos);
      break;
    }
    if (rec.payload_size > kMaxFrame || pos + kRecordHeaderSize + rec.payload_size > size) {
      j.damage = fmt::format("record at byte {} is truncated", pos);
      break;
    }
    std::span<const std::byte> payload = in.read(pos + kRecordHeaderSize, rec.payload_size);
    if (payload.size() != rec.payload_size ||
        record_checksum(type, rec.info.offset, rec.info.length, payload) != rec.info.checksum) {
      j.damage = fmt::format("record at byte {} fails its checksum", pos);
      break;
    }
    pos += kRecordHeaderSize + rec.payload_size;
    j.valid_end = pos;
    if (type == RecordType::commit) {
      if (rec.info.length != j.records.size()) {
        j.damage = "commit record counts a different number of records";
        break;
      }
      j.committed = true;
      j.commit_payload.assign(payload.begin(), payload.end());
      break;
    }
    j.records.push_back(rec);
  }
  return j;
}

// The journal is flushed every 8 MiB while it arrives (apply flushes the image every 64 MiB:
// smaller steps there slowed its writes as much as they shortened its fsync). The network leaves
// the disk idle between records, so these flushes are free and the end of the upload only has
// the last stretch left to flush: W3's 57 MB journal used to be flushed all at once, ~40 ms on
// this test machine's virtual disk (docs/replication.md).
constexpr std::uint64_t kJournalFlushEvery = 8ull << 20;

JournalWriter::JournalWriter(std::filesystem::path partial, std::filesystem::path committed)
    : partial_(std::move(partial)), committed_(std::move(committed)) {}

JournalWriter::~JournalWriter() {
  if (!out_) return;
  try {
    out_->flush();
  } catch (const Error&) {
  }
}

void JournalWriter::begin(const JournalHeader& header, bool resume,
                          const std::optional<ScannedJournal>& existing) {
  header_ = header;
  cursor_ = 0;
  flusher_.reset();
  out_.reset();
  if (resume && existing && !existing->committed && existing->header == header) {
    fd_ = open_fd(partial_, O_RDWR | O_NOFOLLOW);
    records_ = existing->records;
    std::uint64_t end = records_.empty() ? kJournalHeaderSize
                                         : records_.back().file_offset + kRecordHeaderSize +
                                               records_.back().payload_size;
    out_.emplace(fd_.get(), partial_, end);
    flusher_.emplace(fd_.get(), kJournalFlushEvery);
    log::debug("resuming {} with {} records", partial_.native(), records_.size());
    return;
  }
  records_.clear();
  fd_ = open_fd(partial_, O_RDWR | O_CREAT | O_TRUNC | O_NOFOLLOW, 0600);
  out_.emplace(fd_.get(), partial_, 0);
  flusher_.emplace(fd_.get(), kJournalFlushEvery);
  out_->append(encode_file_header(header));
  out_->flush();  // a partial journal always starts with its header, even if nothing follows
}

void JournalWriter::keep(std::uint32_t n) {
  if (n > records_.size() - cursor_)
    fail(ErrorKind::failed, "resume upload into", partial_.native(),
         "protocol error: asked to keep more records than the journal holds");
  cursor_ += n;
}

void JournalWriter::truncate_to_cursor() {
  if (cursor_ >= records_.size()) return;
  out_->truncate(records_[cursor_].file_offset);
  records_.resize(cursor_);
}

void JournalWriter::write_record(RecordType type, std::uint64_t offset, std::uint32_t length,
                                 const Hash128& checksum, std::span<const std::byte> payload) {
  truncate_to_cursor();
  auto head = encode_record_header(type, offset, length, static_cast<std::uint32_t>(payload.size()),
                                   checksum);
  ScannedRecord rec{
      {type, offset, length, checksum}, static_cast<std::uint32_t>(payload.size()), out_->end()};
  // Records are gathered into large writes that bypass the page cache (util/direct_io.hpp).
  out_->append(head);
  out_->append(payload);
  flusher_->wrote(head.size() + payload.size());
  records_.push_back(rec);
  cursor_ = records_.size();
}

void JournalWriter::append(RecordType type, std::uint64_t offset, std::uint32_t length,
                           const Hash128& checksum, std::span<const std::byte> payload) {
  if (!fd_)
    fail(ErrorKind::failed, "write", partial_.native(), "protocol error: record before begin");
  bool sizes_ok = type == RecordType::data   ? payload.size() == length
                  : type == RecordType::zero ? payload.empty()
                                             : false;
  if (!sizes_ok || length == 0 || offset + length > header_.new_size)
    fail(ErrorKind::failed, "write", partial_.native(),
         fmt::format("protocol error: bad record for offset {} length {}", offset, length));
  if (record_checksum(type, offset, length, payload) != checksum)
    fail(ErrorKind::integrity, "receive block", fmt::format("offset {}", offset),
         "the data arrived damaged (checksum mismatch)");
  write_record(type, offset, length, checksum, payload);
}

void JournalWriter::append_manifest_delta(std::uint32_t count, std::span<const std::byte> entries) {
  if (!fd_ || entries.size() != std::size_t{count} * 40)
    fail(ErrorKind::failed, "write", partial_.native(), "protocol error: bad manifest delta");
  write_record(RecordType::manifest_delta, 0, count,
               record_checksum(RecordType::manifest_delta, 0, count, entries), entries);
}

ScannedJournal JournalWriter::commit(std::span<const std::byte> head_and_mac,
                                     const std::filesystem::path& image) {
  if (!fd_)
    fail(ErrorKind::failed, "commit", partial_.native(), "protocol error: commit before begin");
  truncate_to_cursor();
  auto n = static_cast<std::uint32_t>(records_.size());
  write_record(RecordType::commit, 0, n, record_checksum(RecordType::commit, 0, n, head_and_mac),
               head_and_mac);
  out_->flush();
  fsync_fd(fd_.get(), partial_);

  // Claim the space the data will need in the (sparse) image now: a full disk must fail the
  // upload, not the apply of a journal that is already committed. Only holes need claiming.
  UniqueFd img = open_fd(image, O_RDWR | O_CREAT | O_NOFOLLOW, 0644);
  struct stat ist {};
  if (::fstat(img.get(), &ist) != 0) throw_errno("stat", image, errno);
  const auto img_size = static_cast<std::uint64_t>(ist.st_size);
  bool reserved = false;
  auto reserve = [&](std::uint64_t b, std::uint64_t e) {
    if (e <= b) return;
    if (e <= img_size) {
      off_t hole = ::lseek(img.get(), static_cast<off_t>(b), SEEK_HOLE);
      if (hole >= 0 && static_cast<std::uint64_t>(hole) >= e) return;  // all allocated already
    }
    if (::fallocate(img.get(), FALLOC_FL_KEEP_SIZE, static_cast<off_t>(b),
                    static_cast<off_t>(e - b)) == 0)
      reserved = true;
    else if (errno != EOPNOTSUPP)
      throw_errno("reserve space in", image, errno);
  };
  std::uint64_t run_begin = 0, run_end = 0;
  for (const auto& r : records_) {
    if (r.info.type != RecordType::data) continue;
    if (r.info.offset != run_end) {
      reserve(run_begin, run_end);
      run_begin = r.info.offset;
    }
    run_end = r.info.offset + r.info.length;
  }
  reserve(run_begin, run_end);
  if (reserved) fsync_fd(img.get(), image);
  struct statvfs vfs {};
  std::uint64_t manifest_bytes = kManifestHeaderSize +
                                 32 * ((header_.new_size + header_.manifest_block_size - 1) /
                                       std::max<std::uint64_t>(1, header_.manifest_block_size)) +
                                 32;
  if (::fstatvfs(fd_.get(), &vfs) == 0 && vfs.f_bavail * vfs.f_frsize < manifest_bytes + 65536)
    throw_errno("reserve space for the new manifest beside", image, ENOSPC);

  ScannedJournal done;
  done.header = header_;
  done.valid_end = out_->end();
  done.committed = true;
  done.commit_payload.assign(head_and_mac.begin(), head_and_mac.end());
  records_.pop_back();  // the commit record itself
  done.records = std::move(records_);
  records_.clear();
  cursor_ = 0;

  flusher_.reset();
  out_.reset();
  fd_.reset();
  if (::rename(partial_.c_str(), committed_.c_str()) != 0)
    throw_errno("commit journal", committed_, errno);
  fsync_dir(committed_.parent_path());
  return done;
}

void JournalWriter::discard() noexcept {
  flusher_.reset();
  out_.reset();
  fd_.reset();
  ::unlink(partial_.c_str());
}

void JournalWriter::sync() noexcept {
  if (!out_) return;
  try {
    out_->flush();
  } catch (const Error&) {
    return;  // the records that did not make it are simply not part of the partial journal
  }
  (void)::fsync(fd_.get());
}

}  // namespace coffer::replicate
