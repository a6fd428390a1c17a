#include "sender.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>
#include <vector>

#include "coffer/util/error.hpp"
#include "coffer/util/fd.hpp"
#include "coffer/util/signals.hpp"
#include "open_beneath.hpp"
#include "rsync_job.hpp"

namespace coffer::transfer {
namespace {

constexpr std::size_t kListBatch = 64 * 1024;
constexpr std::size_t kChunk = 256 * 1024;

enum class FileStatus : std::uint8_t { ok = 0, changed = 1, vanished = 2, unreadable = 3 };

struct Listed {
  std::string path;
  std::uint64_t size;
  std::int64_t sec;
  std::uint32_t nsec;
  SourceIdentity id;
  bool regular;
  bool sparse;
};

class Sender {
 public:
  Sender(Channel& ch, const SenderOptions& o,
         const std::function<void(std::string_view, std::string_view)>& on_warning)
      : ch_(ch), opts_(o), on_warning_(on_warning), buf_(kChunk) {}

  SenderStats run() {
    send_list();
    serve();
    return stats_;
  }

 private:
  void warn(std::string_view path, std::string_view message) {
    ++stats_.warnings;
    if (on_warning_) on_warning_(path, message);
    Encoder e;
    e.bytes(path);
    e.bytes(message);
    ch_.send(Msg::warning, e.data());
  }

  void send_list() {
    Encoder batch;
    ListEncoder enc;
    Walker walker(
        opts_.root, opts_.walk,
        [&](FileEntry&& e, const SourceIdentity& id) {
          listed_.push_back({e.path, e.size, e.mtime_sec, e.mtime_nsec, id,
                             e.type == EntryType::regular, e.sparse});
          enc.encode(e, batch);
          if (batch.size() >= kListBatch) {
            list_sent_ = true;
            ch_.send(Msg::list, batch.data());
            batch.clear();
          }
        },
        [&](std::string_view path, std::string_view msg) { warn(path, msg); });
    try {
      walker.run();
    } catch (const Error& e) {
      // Nothing sent yet (the root failed, or nothing but the root is left): the receiver
      // gets the error before it creates anything.
      if (!list_sent_) send_error(ch_, e.what());
      throw;
    }
    if (batch.size() > 0) ch_.send(Msg::list, batch.data());
    Encoder end;
    end.uvar(listed_.size());
    ch_.send(Msg::list_end, end.data());
    ch_.flush();
    stats_.entries = listed_.size();
    int fd = ::open(opts_.root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) throw_errno("open source root", opts_.root, errno);
    root_.reset(fd);
  }

  void serve() {
    for (;;) {
      Frame f = ch_.receive();
      switch (f.type) {
        case Msg::request_data: {
          Decoder d(f.payload, ch_.peer());
          auto id = d.uvar();
          d.expect_end();
          serve_file(checked(id), nullptr);
          break;
        }
        case Msg::request_delta: {
          Decoder d(f.payload, ch_.peer());
          auto id = d.uvar();
          d.expect_end();
          const Listed& l = checked(id);
          SignatureLoader sig(opts_.root / l.path);
          for (;;) {
            Frame s = ch_.receive();
            if (s.type == Msg::signature_end) break;
            if (s.type != Msg::signature) ch_.unexpected(s, "a signature");
            sig.feed(std::as_bytes(std::span(s.payload.data(), s.payload.size())));
          }
          sig.finish();
          serve_file(l, &sig);
          break;
        }
        case Msg::finish: {
          Encoder e;
          e.uvar(stats_.files_read);
          e.uvar(stats_.bytes_read);
          ch_.send(Msg::done, e.data());
          ch_.flush();
          return;
        }
        default:
          ch_.unexpected(f, "requests");
      }
      check_interrupted("sending files");
    }
  }

  const Listed& checked(std::uint64_t id) {
    if (id >= listed_.size() || !listed_[id].regular)
      fail(ErrorKind::failed, "read protocol from", ch_.peer(), "request for a bad entry number");
    current_id_ = id;
    return listed_[id];
  }

  void end_file(FileStatus status, std::uint64_t size) {
    Encoder e;
    e.uvar(current_id_);
    e.u8(static_cast<std::uint8_t>(status));
    e.uvar(size);
    ch_.send(Msg::file_end, e.data());
  }

  void send_data(std::uint64_t offset, std::span<const std::byte> data) {
    Encoder head;
    head.uvar(offset);
    ch_.send2(Msg::data, head.data(), data);
  }

  // Answers one request: data (sig == nullptr) or a delta against the signature.
  void serve_file(const Listed& l, SignatureLoader* sig) {
    Encoder begin;
    begin.uvar(current_id_);
    begin.u8(sig ? 'd' : 'D');
    ch_.send(Msg::file_begin, begin.data());
    int fd = open_beneath(root_.get(), l.path,
                          O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_NOATIME);
    if (fd == -EPERM)
      fd = open_beneath(root_.get(), l.path, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
      int err = -fd;
      bool gone = err == ENOENT || err == ENOTDIR || err == ELOOP || err == EXDEV;
      warn(l.path, gone ? "vanished before it was read"
                        : std::string("cannot read: ") + std::strerror(err));
      end_file(gone ? FileStatus::vanished : FileStatus::unreadable, 0);
      return;
    }
    UniqueFd file(fd);
    struct stat before;
    if (::fstat(fd, &before) != 0 || !S_ISREG(before.st_mode)) {
      warn(l.path, "is no longer a regular file");
      end_file(FileStatus::vanished, 0);
      return;
    }
    std::uint64_t size = 0;
    std::vector<std::byte> delta_out;
    std::optional<DeltaJob> delta;
    if (sig) delta.emplace(*sig, opts_.root / l.path);
    ByteSink sink = [&](std::span<const std::byte> out) {
      delta_out.insert(delta_out.end(), out.begin(), out.end());
      if (delta_out.size() >= kChunk) {
        ch_.send2(Msg::delta, {}, delta_out);
        delta_out.clear();
      }
    };
    try {
      if (l.sparse && !sig)
        size = send_sparse(fd, l);
      else
        size = send_sequential(fd, l, delta ? &*delta : nullptr, sink);
    } catch (const Error& e) {
      if (e.kind() == ErrorKind::interrupted) throw;
      warn(l.path, e.what());
      end_file(FileStatus::unreadable, 0);
      return;
    }
    if (delta) {
      delta->finish(sink);
      if (!delta_out.empty()) ch_.send2(Msg::delta, {}, delta_out);
    }
    struct stat after;
    if (::fstat(fd, &after) != 0) throw_errno("stat", opts_.root / l.path, errno);
    bool changed = before.st_ino != l.id.ino || before.st_dev != l.id.dev ||
                   static_cast<std::uint64_t>(after.st_size) != l.size || size != l.size ||
                   after.st_mtim.tv_sec != l.sec ||
                   static_cast<std::uint32_t>(after.st_mtim.tv_nsec) != l.nsec ||
                   after.st_mtim.tv_sec != before.st_mtim.tv_sec ||
                   after.st_mtim.tv_nsec != before.st_mtim.tv_nsec;
    if (changed) warn(l.path, "changed while it was read");
    end_file(changed ? FileStatus::changed : FileStatus::ok, size);
    ++stats_.files_read;
  }

  // Both readers stop at the listed size: the receiver refuses anything beyond what was
  // announced (a file that grew is sent as far as it was listed, flagged as changed, and sent
  // again by the next run).
  std::uint64_t send_sequential(int fd, const Listed& l, DeltaJob* delta, const ByteSink& sink) {
    std::uint64_t off = 0;
    while (off < l.size) {
      std::size_t want =
          static_cast<std::size_t>(std::min<std::uint64_t>(buf_.size(), l.size - off));
      std::size_t n = pread_full(fd, std::span(buf_.data(), want), static_cast<off_t>(off),
                                 opts_.root / l.path);
      if (n == 0) break;
      check_interrupted("reading a file");
      auto chunk = std::span<const std::byte>(buf_.data(), n);
      if (delta)
        delta->feed(chunk, sink);
      else
        send_data(off, chunk);
      off += n;
      stats_.bytes_read += n;
      if (n < want) break;
    }
    return off;
  }

  std::uint64_t send_sparse(int fd, const Listed& l) {
    std::uint64_t pos = 0;
    while (pos < l.size) {
      off_t data = ::lseek(fd, static_cast<off_t>(pos), SEEK_DATA);
      if (data < 0) {
        if (errno == ENXIO) break;  // only a hole is left
        throw_errno("seek data in", opts_.root / l.path, errno);
      }
      off_t hole = ::lseek(fd, data, SEEK_HOLE);
      if (hole < 0) throw_errno("seek hole in", opts_.root / l.path, errno);
      hole = std::min<off_t>(hole, static_cast<off_t>(l.size));
      for (auto off = static_cast<std::uint64_t>(data); off < static_cast<std::uint64_t>(hole);) {
        std::size_t want =
            std::min<std::uint64_t>(buf_.size(), static_cast<std::uint64_t>(hole) - off);
        std::size_t n = pread_full(fd, std::span(buf_.data(), want), static_cast<off_t>(off),
                                   opts_.root / l.path);
        if (n == 0) break;
        check_interrupted("reading a file");
        send_data(off, std::span<const std::byte>(buf_.data(), n));
        off += n;
        stats_.bytes_read += n;
      }
      pos = static_cast<std::uint64_t>(hole);
    }
    struct stat st;
    if (::fstat(fd, &st) != 0) throw_errno("stat", opts_.root / l.path, errno);
    return std::min(static_cast<std::uint64_t>(st.st_size), l.size);
  }

  Channel& ch_;
  const SenderOptions& opts_;
  const std::function<void(std::string_view, std::string_view)>& on_warning_;
  std::vector<Listed> listed_;
  bool list_sent_ = false;  // a LIST frame has gone out
  UniqueFd root_;
  SenderStats stats_;
  std::vector<std::byte> buf_;
  std::uint64_t current_id_ = 0;
};

}  // namespace

SenderStats run_sender(Channel& ch, const SenderOptions& options,
                       const std::function<void(std::string_view, std::string_view)>& on_warning) {
  return Sender(ch, options, on_warning).run();
}

}  // namespace coffer::transfer
