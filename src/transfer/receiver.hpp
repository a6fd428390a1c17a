// The receiver role (B): reads the file list, links what is unchanged, copies locally what
// only changed metadata, requests the rest (deltas against the previous version or data),
// writes it into the in-progress snapshot and publishes it. See docs/snapshots.md.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "coffer/snapshot/catalog.hpp"
#include "entry.hpp"
#include "wire.hpp"

namespace coffer::transfer {

// The link base: the newest complete snapshot's tree and its catalog.
struct PreviousSnapshot {
  std::optional<std::filesystem::path> tree;
  std::optional<snapshot::Catalog> catalog;
};
PreviousSnapshot load_previous(const std::filesystem::path& repo, const std::string& host);

struct ReceiverOptions {
  std::filesystem::path repo;
  std::string host;    // the snapshot name under hosts/
  std::string source;  // shown in the marker
  // Loaded while the connection was being set up (pull); empty: loaded when the list starts.
  std::shared_ptr<std::future<PreviousSnapshot>> prefetched;
  // Read the list and compare it with the previous snapshot; create, lock and request nothing.
  bool dry_run = false;
};

struct ReceiverStats {
  std::string snapshot;  // timestamp directory name
  std::uint64_t entries = 0;
  std::uint64_t linked = 0;   // hard links to the previous snapshot
  std::uint64_t resumed = 0;  // hard links to the tree of an interrupted attempt
  std::uint64_t copied = 0;   // local copies (metadata-only changes, EMLINK)
  std::uint64_t delta_files = 0;
  std::uint64_t data_files = 0;
  std::uint64_t bytes_total = 0;     // sum of regular file sizes in the snapshot
  std::uint64_t bytes_received = 0;  // protocol bytes from the sender
  std::uint64_t bytes_sent = 0;      // protocol bytes to the sender (requests, signatures)
  std::uint64_t warnings = 0;
  // A dry run: what a real run would do with the regular files (hard-link followers aside).
  bool dry_run = false;
  std::uint64_t new_files = 0, new_bytes = 0;              // not in the previous snapshot
  std::uint64_t changed_files = 0, changed_bytes = 0;      // other content: deltas or data
  std::uint64_t metadata_files = 0, metadata_bytes = 0;    // same content, other metadata: copies
  std::uint64_t unchanged_files = 0, unchanged_bytes = 0;  // hard links to the previous snapshot
};

using WarningSink = std::function<void(std::string_view path, std::string_view message)>;

// Runs the receiver after the handshake; publishes the snapshot and sends SUMMARY. On any
// error the in-progress snapshot stays for the next run and the error is also sent to the peer.
ReceiverStats run_receiver(Channel& ch, const ReceiverOptions& options,
                           const WarningSink& on_warning);
// The dry run (options.dry_run): reads the whole list, answers it with FINISH and sends SUMMARY
// with the counts; nothing in the repository is created or changed (dry_run.cpp).
ReceiverStats run_dry_receiver(Channel& ch, const ReceiverOptions& options,
                               const WarningSink& on_warning);

// The catalog line of entry `id` (hash: its content's, or its leader's for a hard link).
snapshot::CatalogEntry catalog_entry(const FileEntry& e, std::uint32_t id,
                                     const std::optional<snapshot::ContentHash>& hash,
                                     bool has_followers);

void encode_summary(const ReceiverStats& s, Encoder& e);
ReceiverStats decode_summary(Decoder& d);

}  // namespace coffer::transfer
