// The receiver's requests for file content and their answers: the window of REQUEST_DATA and
// REQUEST_DELTA messages in flight (a delta request carries the signature of the previous
// version), and the answer being written into a staging file and renamed into the tree. The
// receiver decides what to request and what a finished file means for its hard links.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "coffer/snapshot/content_hash.hpp"
#include "coffer/util/fd.hpp"
#include "entry.hpp"
#include "rsync_job.hpp"
#include "tree_writer.hpp"
#include "wire.hpp"

namespace coffer::transfer {

class FileFetcher {
 public:
  // A file whose answer ended (FILE_END).
  struct Received {
    std::uint32_t id;
    bool delta;  // patched against the previous version, else sent as data
    // Empty: it vanished or was unreadable on A (already warned by A); nothing was kept.
    std::optional<snapshot::ContentHash> hash;
  };

  // Everything is borrowed; `entries` is the receiver's file list, which grows while requests
  // go out.
  FileFetcher(Channel& ch, TreeWriter& tw, std::vector<FileEntry>& entries)
      : ch_(ch), tw_(tw), entries_(entries) {}

  // Queues a request for entry `id`: a delta against its previous version, or its data.
  void request(std::uint32_t id, bool delta);
  // Sends queued requests while the window has room.
  void pump();
  // Nothing queued and no answer outstanding.
  bool idle() const { return queue_.empty() && inflight_.empty(); }

  // The frames of an answer; answers come in the order of the requests.
  void begin_file(const Frame& f);
  void file_data(const Frame& f);
  void file_delta(const Frame& f);
  // Renames the finished file into the tree, or drops it if A could not send it.
  Received end_file(const Frame& f);

 private:
  struct Request {
    std::uint32_t id;
    char kind;  // 'D' data, 'd' delta
    std::string sig;
    bool sig_ready = false;
  };

  struct InFlight {
    std::uint32_t id;
    char kind;
    std::size_t cost;
  };

  struct Incoming {
    std::uint32_t id = 0;
    char kind = 'D';
    UniqueFd out;
    UniqueFd basis;
    std::optional<RsyncJob> patch;
    snapshot::ContentHasher hasher;
    std::uint64_t pos = 0;
  };

  void prepare_signature(Request& r);
  void write_out(std::span<const std::byte> data);

  Channel& ch_;
  TreeWriter& tw_;
  std::vector<FileEntry>& entries_;
  std::deque<Request> queue_;
  std::deque<InFlight> inflight_;
  std::size_t inflight_bytes_ = 0;
  std::optional<Incoming> cur_;
};

}  // namespace coffer::transfer
