// The staging journal on C: records are checked as they arrive, a torn tail is cut, a resumed
// upload keeps the records that still match, commit is a rename, and apply is idempotent.
#include <fcntl.h>
#include <gtest/gtest.h>

#include "coffer/util/error.hpp"
#include "coffer/util/fd.hpp"
#include "file_hash.hpp"
#include "journal.hpp"
#include "temp_dir.hpp"

namespace coffer::replicate {
namespace {

using coffer::test::random_bytes;

struct JournalTest : ::testing::Test {
  test::TempDir tmp;
  std::filesystem::path partial = tmp / "journal.partial", committed = tmp / "journal",
                        image = tmp / "image", manifest = tmp / "manifest";
  JournalHeader header{0, 1, {}, 1 << 20, 4096, kManifestBlockSize};

  void add(JournalWriter& w, RecordType type, std::uint64_t off, std::span<const std::byte> data,
           std::uint32_t len = 0) {
    if (!len) len = static_cast<std::uint32_t>(data.size());
    w.append(type, off, len, record_checksum(type, off, len, data), data);
  }
  std::vector<std::byte> commit_payload(std::uint64_t gen, std::uint64_t size) {
    ManifestHeader h;
    h.generation = gen;
    h.image_size = size;
    auto bytes = encode_manifest_header(h);
    bytes.resize(bytes.size() + kMacSize, std::byte{0x5a});
    return bytes;
  }
  ScannedJournal scan(const std::filesystem::path& p) {
    UniqueFd fd = open_fd(p, O_RDONLY);
    return scan_journal(fd.get(), p);
  }
};

TEST_F(JournalTest, CommitAndApply) {
  auto a = random_bytes(8192, 1), b = random_bytes(4096, 2);
  JournalWriter w(partial, committed);
  w.begin(header, false, std::nullopt);
  add(w, RecordType::data, 0, a);
  add(w, RecordType::data, 65536, b);
  add(w, RecordType::zero, 131072, {}, 4096);
  Hash256 e0 = strong_hash(a);
  Encoder enc;
  enc.u64(0).hash(e0);
  w.append_manifest_delta(1, enc.bytes);
  w.commit(commit_payload(1, 1 << 20), image);
  EXPECT_FALSE(std::filesystem::exists(partial));
  ASSERT_TRUE(std::filesystem::exists(committed));
  ScannedJournal j = scan(committed);
  EXPECT_TRUE(j.committed);
  EXPECT_EQ(j.records.size(), 4u);

  EXPECT_EQ(apply_journal(committed, image, manifest), 1u);
  EXPECT_FALSE(std::filesystem::exists(committed)) << "an applied journal is removed";
  EXPECT_EQ(std::filesystem::file_size(image), 1u << 20);
  std::vector<std::byte> back(8192);
  UniqueFd fd = open_fd(image, O_RDONLY);
  pread_full(fd.get(), back, 0, image);
  EXPECT_EQ(back, a);
  Manifest m = Manifest::load(manifest);
  EXPECT_EQ(m.header.generation, 1u);
  ASSERT_EQ(m.entries.size(), 16u);
  EXPECT_EQ(m.entries[0], e0);
  EXPECT_EQ(m.entries[1], zero_block_hash(kManifestBlockSize)) << "entries not in the delta";
}

TEST_F(JournalTest, ApplyIsIdempotent) {
  auto a = random_bytes(65536, 3);
  JournalWriter w(partial, committed);
  w.begin(header, false, std::nullopt);
  add(w, RecordType::data, 4096, a);
  w.commit(commit_payload(1, 1 << 20), image);
  std::filesystem::copy_file(committed, tmp / "copy");
  apply_journal(committed, image, manifest);
  std::string done = test::hash_file(image), done_manifest = test::hash_file(manifest);
  // A crash during apply: the image holds part of the new data and garbage elsewhere in the
  // region being written, the journal is still there.
  auto junk = random_bytes(20000, 4);
  UniqueFd fd = open_fd(image, O_WRONLY);
  pwrite_all(fd.get(), junk, 30000, image);
  std::filesystem::copy_file(tmp / "copy", committed);
  apply_journal(committed, image, manifest);
  EXPECT_EQ(test::hash_file(image), done);
  EXPECT_EQ(test::hash_file(manifest), done_manifest);
}

TEST_F(JournalTest, ResumeKeepsMatchingPrefixAndCutsTornTail) {
  auto a = random_bytes(4096, 5), b = random_bytes(4096, 6), c = random_bytes(4096, 7);
  {
    JournalWriter w(partial, committed);
    w.begin(header, false, std::nullopt);
    add(w, RecordType::data, 0, a);
    add(w, RecordType::data, 8192, b);
  }
  {  // a torn write at the end
    UniqueFd fd = open_fd(partial, O_WRONLY | O_APPEND);
    write_all(fd.get(), "CREC half a record", partial);
  }
  ScannedJournal j = scan(partial);
  EXPECT_FALSE(j.committed);
  EXPECT_EQ(j.records.size(), 2u);
  EXPECT_FALSE(j.damage.empty());

  JournalWriter w(partial, committed);
  w.begin(header, true, j);
  w.keep(1);                           // record 0 is still wanted
  add(w, RecordType::data, 16384, c);  // record 1 (offset 8192) is not: it is dropped
  w.commit(commit_payload(1, 1 << 20), image);
  ScannedJournal done = scan(committed);
  ASSERT_EQ(done.records.size(), 2u);
  EXPECT_EQ(done.records[0].info.offset, 0u);
  EXPECT_EQ(done.records[1].info.offset, 16384u);
  EXPECT_THROW(w.keep(5), Error);
}

TEST_F(JournalTest, ResumeRefusesAnotherHeader) {
  auto a = random_bytes(4096, 8);
  {
    JournalWriter w(partial, committed);
    w.begin(header, false, std::nullopt);
    add(w, RecordType::data, 0, a);
  }
  ScannedJournal j = scan(partial);
  JournalHeader other = header;
  other.new_size += 4096;
  JournalWriter w(partial, committed);
  w.begin(other, true, j);
  EXPECT_EQ(scan(partial).records.size(), 0u) << "a journal for another upload starts over";
}

TEST_F(JournalTest, DamagedDataIsRefused) {
  auto a = random_bytes(4096, 9);
  JournalWriter w(partial, committed);
  w.begin(header, false, std::nullopt);
  Hash128 sum = record_checksum(RecordType::data, 0, 4096, a);
  a[17] ^= std::byte{1};
  try {
    w.append(RecordType::data, 0, 4096, sum, a);
    FAIL() << "a damaged record was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::integrity);
  }
  EXPECT_THROW(add(w, RecordType::data, (1 << 20) - 100, random_bytes(4096, 1)), Error)
      << "past the end of the new image";
}

TEST_F(JournalTest, DamagedCommittedJournalIsNotApplied) {
  auto a = random_bytes(4096, 10);
  JournalWriter w(partial, committed);
  w.begin(header, false, std::nullopt);
  add(w, RecordType::data, 0, a);
  w.commit(commit_payload(1, 1 << 20), image);
  std::string before = test::hash_file(image);
  {
    UniqueFd fd = open_fd(committed, O_RDWR);
    std::vector<std::byte> one(1);
    const off_t at = kJournalHeaderSize + kRecordHeaderSize + 5;
    pread_full(fd.get(), one, at, committed);
    one[0] ^= std::byte{0x80};
    pwrite_all(fd.get(), one, at, committed);
  }
  try {
    apply_journal(committed, image, manifest);
    FAIL() << "applied a damaged journal";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::integrity);
  }
  EXPECT_EQ(test::hash_file(image), before);
  EXPECT_FALSE(std::filesystem::exists(manifest));
}

TEST_F(JournalTest, RefusesAJournalThatDoesNotFollowTheManifest) {
  JournalWriter w(partial, committed);
  JournalHeader h = header;
  h.base_generation = 4;
  h.new_generation = 5;
  w.begin(h, false, std::nullopt);
  w.commit(commit_payload(5, 1 << 20), image);
  EXPECT_THROW(apply_journal(committed, image, manifest), Error) << "no manifest of generation 4";
}

}  // namespace
}  // namespace coffer::replicate
