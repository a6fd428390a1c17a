// The receiver's small pieces that need none of its state: the link base, catalog lines,
// the SUMMARY message.
#include "coffer/snapshot/layout.hpp"
#include "entry.hpp"
#include "receiver.hpp"

namespace coffer::transfer {

PreviousSnapshot load_previous(const std::filesystem::path& repo, const std::string& host) {
  PreviousSnapshot p;
  if (!snapshot::valid_host_name(host)) return p;
  if (auto prev = snapshot::latest_complete(repo, host)) {
    p.tree = prev->tree();
    p.catalog = snapshot::Catalog::load(prev->catalog());
  }
  return p;
}

snapshot::CatalogEntry catalog_entry(const FileEntry& e, std::uint32_t id,
                                     const std::optional<snapshot::ContentHash>& hash,
                                     bool has_followers) {
  snapshot::CatalogEntry c;
  c.path = e.path;
  c.type = e.type;
  c.mode = e.mode;
  c.uid = e.uid;
  c.gid = e.gid;
  c.size = e.type == EntryType::regular || e.type == EntryType::symlink ? e.size : 0;
  c.mtime_sec = e.mtime_sec;
  c.mtime_nsec = e.mtime_nsec;
  c.rdev = e.rdev;
  c.xattr_digest = xattr_digest(e.xattrs);
  c.link_target = e.link_target;
  if (e.is_follower())
    c.link_group = e.leader + 1ull;
  else if (has_followers)
    c.link_group = id + 1ull;
  if (e.type == EntryType::regular) c.hash = hash;
  return c;
}

void encode_summary(const ReceiverStats& s, Encoder& e) {
  e.bytes(s.snapshot);
  for (auto v : {s.entries, s.warnings, s.linked, s.copied, s.delta_files, s.data_files,
                 s.bytes_received, s.resumed, s.bytes_total, s.bytes_sent})
    e.uvar(v);
  if (!s.dry_run) return;
  e.uvar(1);  // the dry-run counts follow
  for (auto v : {s.new_files, s.new_bytes, s.changed_files, s.changed_bytes, s.metadata_files,
                 s.metadata_bytes, s.unchanged_files, s.unchanged_bytes})
    e.uvar(v);
}

ReceiverStats decode_summary(Decoder& d) {
  ReceiverStats s;
  s.snapshot = d.bytes();
  for (auto* v : {&s.entries, &s.warnings, &s.linked, &s.copied, &s.delta_files, &s.data_files,
                  &s.bytes_received, &s.resumed, &s.bytes_total, &s.bytes_sent})
    *v = d.uvar();
  if (!d.at_end()) {
    if (d.uvar() != 1) d.malformed("unknown summary extension");
    s.dry_run = true;
    for (auto* v : {&s.new_files, &s.new_bytes, &s.changed_files, &s.changed_bytes,
                    &s.metadata_files, &s.metadata_bytes, &s.unchanged_files, &s.unchanged_bytes})
      *v = d.uvar();
  }
  d.expect_end();
  return s;
}

}  // namespace coffer::transfer
