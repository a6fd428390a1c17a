#include "rsync_job.hpp"

#include <librsync.h>
#include <sys/stat.h>
#include <cerrno>
#include <cmath>
#include <vector>

#include "coffer/util/error.hpp"
#include "coffer/util/fd.hpp"
#include "coffer/util/signals.hpp"

namespace coffer::transfer {
namespace fs = std::filesystem;

struct RsyncJob::State {
  rs_job_t* job = nullptr;
  fs::path shown;
  const char* what = "";
  int basis_fd = -1;
  std::vector<std::byte> out_buf = std::vector<std::byte>(1 << 16);
  ~State() {
    if (job) rs_job_free(job);
  }
};

namespace {

[[noreturn]] void rs_fail(const char* what, const fs::path& shown, rs_result r) {
  fail(ErrorKind::failed, what, shown.native(), std::string("librsync: ") + rs_strerror(r));
}

rs_result copy_from_basis(void* opaque, rs_long_t pos, size_t* len, void** buf) {
  auto* s = static_cast<RsyncJob::State*>(opaque);
  try {
    std::size_t n = pread_full(s->basis_fd, std::span(static_cast<std::byte*>(*buf), *len),
                               static_cast<off_t>(pos), s->shown);
    *len = n;
    return n == 0 ? RS_INPUT_ENDED : RS_DONE;
  } catch (const Error&) {
    return RS_IO_ERROR;
  }
}

}  // namespace

RsyncJob::RsyncJob(std::unique_ptr<State> s) : state_(std::move(s)) {}
RsyncJob::RsyncJob(RsyncJob&&) noexcept = default;
RsyncJob& RsyncJob::operator=(RsyncJob&&) noexcept = default;
RsyncJob::~RsyncJob() = default;

RsyncJob RsyncJob::signature(std::uint64_t basis_size, fs::path shown) {
  // Blocks of about sqrt(size), at least 256 bytes: a small change costs about one block of
  // literal data in the delta, and the signature stays around 1% of the file.
  auto root = static_cast<std::size_t>(std::sqrt(static_cast<double>(basis_size)));
  std::size_t block_len = std::max<std::size_t>(256, (root + 63) / 64 * 64);
  std::size_t strong_len = static_cast<std::size_t>(-1);  // minimal safe length
  rs_magic_number magic = RS_RK_BLAKE2_SIG_MAGIC;
  rs_result r = rs_sig_args(static_cast<rs_long_t>(basis_size), &magic, &block_len, &strong_len);
  if (r != RS_DONE) rs_fail("compute signature of", shown, r);
  auto s = std::make_unique<State>();
  s->shown = std::move(shown);
  s->what = "compute signature of";
  s->job = rs_sig_begin(block_len, strong_len, magic);
  if (!s->job) rs_fail(s->what, s->shown, RS_MEM_ERROR);
  return RsyncJob(std::move(s));
}

RsyncJob RsyncJob::patch(int basis_fd, fs::path shown) {
  auto s = std::make_unique<State>();
  s->shown = std::move(shown);
  s->what = "apply delta to";
  s->basis_fd = basis_fd;
  s->job = rs_patch_begin(copy_from_basis, s.get());
  if (!s->job) rs_fail(s->what, s->shown, RS_MEM_ERROR);
  return RsyncJob(std::move(s));
}

void RsyncJob::feed(std::span<const std::byte> in, const ByteSink& out) {
  run(in, false, out);
}
void RsyncJob::finish(const ByteSink& out) {
  run({}, true, out);
}

void RsyncJob::run(std::span<const std::byte> in, bool eof, const ByteSink& out) {
  rs_buffers_t b{};
  // librsync takes a char* but never writes through next_in.
  b.next_in = const_cast<char*>(reinterpret_cast<const char*>(in.data()));
  b.avail_in = in.size();
  b.eof_in = eof ? 1 : 0;
  for (;;) {
    b.next_out = reinterpret_cast<char*>(state_->out_buf.data());
    b.avail_out = state_->out_buf.size();
    std::size_t before_in = b.avail_in;
    rs_result r = rs_job_iter(state_->job, &b);
    std::size_t produced = state_->out_buf.size() - b.avail_out;
    if (produced > 0 && out) out(std::span(state_->out_buf.data(), produced));
    if (r == RS_DONE) {
      if (b.avail_in > 0)
        fail(ErrorKind::failed, state_->what, state_->shown.native(), "librsync: trailing input");
      return;
    }
    if (r != RS_BLOCKED) rs_fail(state_->what, state_->shown, r);
    bool progress = produced > 0 || b.avail_in != before_in;
    if (!eof && b.avail_in == 0 && b.avail_out > 0) return;  // wants more input
    if (!progress)
      fail(ErrorKind::failed, state_->what, state_->shown.native(),
           eof ? "librsync: input truncated" : "librsync: no progress");
  }
}

std::string file_signature(int fd, const fs::path& shown) {
  struct stat st;
  if (::fstat(fd, &st) != 0) throw_errno("stat", shown, errno);
  RsyncJob job = RsyncJob::signature(static_cast<std::uint64_t>(st.st_size), shown);
  std::string sig;
  ByteSink sink = [&](std::span<const std::byte> out) {
    sig.append(reinterpret_cast<const char*>(out.data()), out.size());
  };
  std::vector<std::byte> buf(1 << 18);
  off_t off = 0;
  for (;;) {
    check_interrupted("computing a signature");
    std::size_t n = pread_full(fd, buf, off, shown);
    if (n == 0) break;
    job.feed(std::span<const std::byte>(buf.data(), n), sink);
    off += static_cast<off_t>(n);
  }
  job.finish(sink);
  return sig;
}

struct SignatureLoader::State {
  rs_signature_t* sig = nullptr;
  std::unique_ptr<RsyncJob> job;
  fs::path shown;
  ~State() {
    job.reset();
    if (sig) rs_free_sumset(sig);
  }
};

SignatureLoader::SignatureLoader(fs::path shown) : state_(std::make_unique<State>()) {
  state_->shown = shown;
  auto js = std::make_unique<RsyncJob::State>();
  js->shown = std::move(shown);
  js->what = "load signature for";
  js->job = rs_loadsig_begin(&state_->sig);
  if (!js->job) rs_fail(js->what, js->shown, RS_MEM_ERROR);
  state_->job = std::unique_ptr<RsyncJob>(new RsyncJob(std::move(js)));
}

SignatureLoader::~SignatureLoader() = default;

void SignatureLoader::feed(std::span<const std::byte> in) {
  state_->job->feed(in, nullptr);
}

void SignatureLoader::finish() {
  state_->job->finish(nullptr);
  state_->job.reset();
  rs_result r = rs_build_hash_table(state_->sig);
  if (r != RS_DONE) rs_fail("index signature for", state_->shown, r);
}

DeltaJob::DeltaJob(SignatureLoader& sig, fs::path shown)
    : job_([&] {
        auto s = std::make_unique<RsyncJob::State>();
        s->shown = std::move(shown);
        s->what = "compute delta of";
        s->job = rs_delta_begin(sig.state_->sig);
        if (!s->job) rs_fail(s->what, s->shown, RS_MEM_ERROR);
        return RsyncJob(std::move(s));
      }()) {}

DeltaJob::~DeltaJob() = default;

}  // namespace coffer::transfer
