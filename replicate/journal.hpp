// The staging journal on C (docs/formats/journal.md): changed blocks are appended to
// DIR/journal.partial as they arrive, the commit record is appended and fsynced, the file is
// renamed to DIR/journal (the commit point), then applied to DIR/image in place. Applying is
// idempotent: every record holds absolute contents, so a crash during apply is repaired by
// applying the whole journal again.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <vector>

#include "coffer/util/background_sync.hpp"
#include "coffer/util/direct_io.hpp"
#include "coffer/util/fd.hpp"
#include "protocol.hpp"

namespace coffer::replicate {

constexpr std::size_t kJournalHeaderSize = 80;
constexpr std::size_t kRecordHeaderSize = 40;

struct ScannedRecord {
  RecordInfo info;
  std::uint32_t payload_size = 0;
  std::uint64_t file_offset = 0;  // of the record header
};

struct ScannedJournal {
  JournalHeader header;
  std::vector<ScannedRecord> records;  // valid records before the commit record, in order
  std::uint64_t valid_end = 0;         // end of the last valid record (commit included)
  bool committed = false;
  std::vector<std::byte> commit_payload;  // manifest header + MAC of the new generation
  std::string damage;                     // why scanning stopped early, if it did
};

// Reads a journal, checking every record's checksum; stops at the first damaged record (a torn
// tail of an interrupted upload). Throws (integrity) only if the file header itself is bad.
ScannedJournal scan_journal(int fd, const std::filesystem::path& shown);

// Appends records to DIR/journal.partial and commits it.
class JournalWriter {
 public:
  JournalWriter(std::filesystem::path partial, std::filesystem::path committed);
  // Writes what is still buffered (a resumable upload keeps every complete record).
  ~JournalWriter();
  JournalWriter(const JournalWriter&) = delete;
  JournalWriter& operator=(const JournalWriter&) = delete;

  // Keeps the valid prefix of `existing` if its header equals `header` and `resume` is set;
  // otherwise starts a new file.
  void begin(const JournalHeader& header, bool resume,
             const std::optional<ScannedJournal>& existing);
  // The next `n` records already in the file are part of this upload.
  void keep(std::uint32_t n);
  // Appends a data or zero record; the first record not kept drops every later one in the file.
  void append(RecordType type, std::uint64_t offset, std::uint32_t length, const Hash128& checksum,
              std::span<const std::byte> payload);
  void append_manifest_delta(std::uint32_t count, std::span<const std::byte> entries);
  // Appends the commit record (manifest header + MAC), fsyncs, reserves space in `image` for
  // every data record, then renames journal.partial to journal and fsyncs the directory.
  // Returns the committed journal as scan_journal would read it back.
  ScannedJournal commit(std::span<const std::byte> manifest_head_and_mac,
                        const std::filesystem::path& image);
  // fsync what has arrived, so a resumed upload survives a reboot of C.
  void sync() noexcept;
  // Removes journal.partial (after a full disk).
  void discard() noexcept;
  bool active() const { return static_cast<bool>(fd_); }
  const JournalHeader& header() const { return header_; }

 private:
  void truncate_to_cursor();
  void write_record(RecordType type, std::uint64_t offset, std::uint32_t length,
                    const Hash128& checksum, std::span<const std::byte> payload);

  std::filesystem::path partial_, committed_;
  UniqueFd fd_;
  std::optional<DirectAppender> out_;      // writes through fd_: declared after it, destroyed first
  std::optional<BackgroundSync> flusher_;  // flushes fd_ while records arrive
  JournalHeader header_;
  std::vector<ScannedRecord> records_;
  std::size_t cursor_ = 0;
};

// What a helper that has just received and committed a journal already knows, which spares
// apply reading it twice: `written` is what the JournalWriter wrote (every record checksummed
// as it arrived); `current` is the manifest on C, loaded while the upload ran.
struct ApplyHints {
  const ScannedJournal* written = nullptr;
  std::optional<Manifest> current;
};

// Applies the committed journal at `journal` to `image`, writes the new `manifest`, removes the
// journal. Returns the generation now on C. Without hints the journal is scanned and checked
// first, and the manifest read from disk.
//
// With `removed_journal`, the removed journal's descriptor is handed back open instead of being
// closed: its blocks are freed only when the last descriptor closes, which on a file system that
// discards synchronously (ext4 without a journal, mounted with `discard`) took ~25 ms per 57 MB,
// and the helper would rather reply to B first.
std::uint64_t apply_journal(const std::filesystem::path& journal,
                            const std::filesystem::path& image,
                            const std::filesystem::path& manifest, ApplyHints hints = {},
                            UniqueFd* removed_journal = nullptr);

}  // namespace coffer::replicate
