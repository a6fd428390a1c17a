#include "file_fetcher.hpp"

#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>
#include <string_view>

#include "coffer/util/error.hpp"

namespace coffer::transfer {
namespace {
// The request window: requests await their answers up to this many bytes (16 per request plus
// its signature); one always goes out, however large.
constexpr std::size_t kWindow = 48 * 1024;
// A signature goes out in SIGNATURE frames of at most this size.
constexpr std::size_t kSigChunk = 256 * 1024;
}  // namespace

using snapshot::ContentHash;

void FileFetcher::request(std::uint32_t id, bool delta) {
  queue_.push_back(Request{id, delta ? 'd' : 'D', {}, false});
}

// Computes the signature of the previous version just before the request goes out.
void FileFetcher::prepare_signature(Request& r) {
  r.sig_ready = true;
  const FileEntry& e = entries_[r.id];
  int fd = open_in(tw_.dir(e.parent()).prev.get(), e);
  if (fd < 0) {
    r.kind = 'D';
    return;
  }
  UniqueFd basis(fd);
  struct stat st;
  if (::fstat(basis.get(), &st) != 0)
    throw_errno("stat previous version of", tw_.shown(e.path), errno);
  if (static_cast<std::uint64_t>(st.st_blocks) * 512 < static_cast<std::uint64_t>(st.st_size)) {
    // A sparse previous version: a signature would read and hash every byte of its holes, so
    // the file travels as data, whose holes cost nothing.
    r.kind = 'D';
    return;
  }
  r.sig = file_signature(basis.get(), tw_.shown(e.path));
}

void FileFetcher::pump() {
  while (!queue_.empty()) {
    Request& r = queue_.front();
    if (r.kind == 'd' && !r.sig_ready) prepare_signature(r);
    std::size_t cost = 16 + r.sig.size();
    if (inflight_bytes_ > 0 && inflight_bytes_ + cost > kWindow) return;
    Encoder e;
    e.uvar(r.id);
    if (r.kind == 'D') {
      ch_.send(Msg::request_data, e.data());
    } else {
      ch_.send(Msg::request_delta, e.data());
      for (std::size_t off = 0; off < r.sig.size(); off += kSigChunk)
        ch_.send(Msg::signature, std::string_view(r.sig).substr(off, kSigChunk));
      ch_.send(Msg::signature_end, {});
    }
    inflight_.push_back({r.id, r.kind, cost});
    inflight_bytes_ += cost;
    queue_.pop_front();
  }
}

void FileFetcher::begin_file(const Frame& f) {
  Decoder d(f.payload, ch_.peer());
  auto id = d.uvar();
  char kind = static_cast<char>(d.u8());
  d.expect_end();
  if (cur_ || inflight_.empty() || inflight_.front().id != id || inflight_.front().kind != kind)
    d.malformed("answer does not match the oldest request");
  cur_.emplace();
  cur_->id = static_cast<std::uint32_t>(id);
  cur_->kind = kind;
  cur_->hasher = snapshot::ContentHasher(entries_[id].sparse);
  cur_->out = tw_.create_staging(cur_->id);
  if (kind == 'd') {
    const FileEntry& e = entries_[id];
    int fd = open_in(tw_.dir(e.parent()).prev.get(), e);
    if (fd < 0) throw_errno("open previous version of", tw_.shown(e.path), -fd);
    cur_->basis.reset(fd);
    cur_->patch.emplace(RsyncJob::patch(cur_->basis.get(), tw_.shown(e.path)));
  }
}

void FileFetcher::write_out(std::span<const std::byte> data) {
  // A delta's COPY commands can expand a few bytes into gigabytes: what it produces is bounded
  // by the size A announced, as data is.
  if (data.size() > entries_[cur_->id].size - cur_->pos)
    Decoder({}, ch_.peer())
        .malformed("delta result larger than the announced size of " +
                   snapshot::escape_path(entries_[cur_->id].path));
  pwrite_all(cur_->out.get(), data, static_cast<off_t>(cur_->pos),
             tw_.shown(entries_[cur_->id].path));
  cur_->hasher.update(data);
  cur_->pos += data.size();
}

void FileFetcher::file_data(const Frame& f) {
  Decoder d(f.payload, ch_.peer());
  if (!cur_ || cur_->kind != 'D') d.malformed("data outside a file");
  std::uint64_t off = d.uvar();
  if (off < cur_->pos) d.malformed("data offsets go backwards");
  auto bytes = d.rest();
  std::uint64_t announced = entries_[cur_->id].size;
  if (off > announced || bytes.size() > announced - off)
    d.malformed("data beyond the announced size of " +
                snapshot::escape_path(entries_[cur_->id].path));
  // Only a file listed as sparse has holes (the plain hash would cost a pass over each).
  if (off != cur_->pos && !entries_[cur_->id].sparse)
    d.malformed("a hole in " + snapshot::escape_path(entries_[cur_->id].path) +
                ", listed without holes");
  cur_->hasher.update_zeros(off - cur_->pos);  // a hole
  cur_->pos = off;
  write_out(std::as_bytes(std::span(bytes.data(), bytes.size())));
}

void FileFetcher::file_delta(const Frame& f) {
  if (!cur_ || cur_->kind != 'd') Decoder(f.payload, ch_.peer()).malformed("delta outside a file");
  cur_->patch->feed(std::as_bytes(std::span(f.payload.data(), f.payload.size())),
                    [&](std::span<const std::byte> out) { write_out(out); });
}

FileFetcher::Received FileFetcher::end_file(const Frame& f) {
  Decoder d(f.payload, ch_.peer());
  auto id = d.uvar();
  auto status = d.u8();
  auto size = d.uvar();
  d.expect_end();
  if (!cur_ || cur_->id != id) d.malformed("file end without its beginning");
  std::uint32_t fid = cur_->id;
  FileEntry& e = entries_[fid];
  InFlight done_req = inflight_.front();
  inflight_.pop_front();
  inflight_bytes_ -= done_req.cost;
  if (status == 2 || status == 3) {  // vanished or unreadable on A (already warned by A)
    cur_.reset();
    tw_.unlink_staging(fid);
    return {fid, false, std::nullopt};
  }
  if (status > 3) d.malformed("unknown file status");
  if (size > e.size)
    d.malformed("file end beyond the announced size of " + snapshot::escape_path(e.path));
  bool delta = cur_->kind == 'd';
  if (delta) {
    cur_->patch->finish([&](std::span<const std::byte> out) { write_out(out); });
    if (cur_->pos != size) d.malformed("delta result has the wrong size");
  } else {
    if (size < cur_->pos) d.malformed("file size smaller than its data");
    if (size != cur_->pos && !e.sparse)
      d.malformed("a hole at the end of " + snapshot::escape_path(e.path) +
                  ", listed without holes");
    cur_->hasher.update_zeros(size - cur_->pos);
    if (::ftruncate(cur_->out.get(), static_cast<off_t>(size)) != 0)
      throw_errno("set size of", tw_.shown(e.path), errno);
  }
  // Status 1 (changed while read): keep what was read, with the listed mtime, so that the next
  // run sees a difference and sends it again.
  e.size = size;
  tw_.commit_staging(fid, cur_->out.get(), e);
  ContentHash h = cur_->hasher.finish();
  cur_.reset();
  return {fid, delta, h};
}

}  // namespace coffer::transfer
