// `coffer backup -n`: the receiver's side of a dry run. The sender walks the source as usual;
// B decodes the list and compares each regular file with the previous snapshot's catalog the
// way a real run decides between a hard link, a local copy and a transfer, but requests no data
// and creates nothing: no host directory, no lock, no in-progress snapshot.
#include <sys/stat.h>
#include <cerrno>

#include "coffer/util/error.hpp"
#include "coffer/util/signals.hpp"
#include "receiver.hpp"

namespace coffer::transfer {
namespace {

void check_repository(const std::filesystem::path& repo) {
  struct stat st;
  if (::stat(repo.c_str(), &st) != 0)
    throw_errno("open repository", repo, errno, ErrorKind::missing);
  if (!S_ISDIR(st.st_mode))
    fail(ErrorKind::missing, "open repository", repo.native(), "not a directory");
}

void classify(const FileEntry& e, const snapshot::Catalog* prev, ReceiverStats& s) {
  if (e.type != EntryType::regular || e.is_follower()) return;
  const snapshot::CatalogEntry* p = prev ? prev->find(e.path) : nullptr;
  if (!p || p->type != EntryType::regular) {
    ++s.new_files;
    s.new_bytes += e.size;
    return;
  }
  // The same tests as the real receiver (receiver.cpp, add_regular).
  bool same_content =
      p->size == e.size && p->mtime_sec == e.mtime_sec && p->mtime_nsec == e.mtime_nsec && p->hash;
  if (!same_content) {
    ++s.changed_files;
    s.changed_bytes += e.size;
  } else if (p->mode == e.mode && p->uid == e.uid && p->gid == e.gid &&
             p->xattr_digest == xattr_digest(e.xattrs)) {
    ++s.unchanged_files;
    s.unchanged_bytes += e.size;
  } else {
    ++s.metadata_files;
    s.metadata_bytes += e.size;
  }
}

void record_warning(const Frame& f, const Channel& ch, ReceiverStats& s, const WarningSink& warn) {
  Decoder d(f.payload, ch.peer());
  std::string path(d.bytes());
  std::string msg(d.bytes());
  ++s.warnings;
  if (warn) warn(path, msg);
}

}  // namespace

ReceiverStats run_dry_receiver(Channel& ch, const ReceiverOptions& o, const WarningSink& warn) {
  ReceiverStats s;
  s.dry_run = true;
  Frame f = ch.receive();
  if (f.type == Msg::error) throw_peer_error(ch, f);  // e.g. an empty source
  check_repository(o.repo);
  PreviousSnapshot prev = o.prefetched ? o.prefetched->get() : load_previous(o.repo, o.host);
  const snapshot::Catalog* cat = prev.catalog ? &*prev.catalog : nullptr;
  std::vector<FileEntry> entries;
  ListDecoder dec;
  for (;;) {
    if (f.type == Msg::list) {
      Decoder d(f.payload, ch.peer());
      while (!d.at_end()) {
        entries.push_back(dec.decode(d, entries));
        classify(entries.back(), cat, s);
      }
    } else if (f.type == Msg::warning) {
      record_warning(f, ch, s, warn);
    } else if (f.type == Msg::list_end) {
      Decoder d(f.payload, ch.peer());
      if (d.uvar() != entries.size()) d.malformed("file list count does not match");
      if (entries.empty()) d.malformed("empty file list");
      break;
    } else {
      ch.unexpected(f, "the file list");
    }
    check_interrupted("receiving the file list");
    f = ch.receive();
  }
  s.entries = entries.size();
  for (const auto& e : entries)
    if (e.type == EntryType::regular) s.bytes_total += e.size;
  ch.send(Msg::finish, {});
  for (;;) {
    Frame g = ch.receive();
    if (g.type == Msg::warning) {
      record_warning(g, ch, s, warn);
      continue;
    }
    if (g.type != Msg::done) ch.unexpected(g, "the end of the transfer");
    break;
  }
  s.bytes_received = ch.bytes_in();
  s.bytes_sent = ch.bytes_out();
  Encoder e;
  encode_summary(s, e);
  ch.send(Msg::summary, e.data());
  ch.flush();
  return s;
}

}  // namespace coffer::transfer
