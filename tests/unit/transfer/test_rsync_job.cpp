#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>
#include <random>

#include "coffer/util/error.hpp"
#include "coffer/util/fd.hpp"
#include "rsync_job.hpp"
#include "temp_dir.hpp"

using namespace coffer::transfer;

namespace {
std::string random_bytes(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}
std::span<const std::byte> bytes(const std::string& s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}
}  // namespace

TEST(RsyncJob, SignatureDeltaPatchRebuildsTheNewVersionWithASmallDelta) {
  std::string old_data = random_bytes(1 << 20, 1);
  std::string new_data = old_data;
  for (int i = 0; i < 100; ++i)
    new_data[500000 + i] = static_cast<char>(new_data[500000 + i] ^ 0x5a);
  new_data += "appended tail";

  std::string sig;
  auto to = [](std::string& s) {
    return [&s](std::span<const std::byte> b) {
      s.append(reinterpret_cast<const char*>(b.data()), b.size());
    };
  };
  RsyncJob sj = RsyncJob::signature(old_data.size(), "old");
  for (std::size_t off = 0; off < old_data.size(); off += 65536)
    sj.feed(bytes(old_data.substr(off, 65536)), to(sig));
  sj.finish(to(sig));
  EXPECT_LT(sig.size(), old_data.size() / 50);

  SignatureLoader loader("new");
  loader.feed(bytes(sig));
  loader.finish();
  std::string delta;
  DeltaJob dj(loader, "new");
  dj.feed(bytes(new_data), to(delta));
  dj.finish(to(delta));
  EXPECT_LT(delta.size(), 8000u) << "a 100-byte change must not resend the file";

  coffer::test::TempDir dir;
  coffer::test::write_text(dir / "basis", old_data);
  coffer::UniqueFd basis = coffer::open_fd(dir / "basis", O_RDONLY);
  std::string rebuilt;
  RsyncJob pj = RsyncJob::patch(basis.get(), "basis");
  for (std::size_t off = 0; off < delta.size(); off += 1000)  // arbitrary chunking
    pj.feed(bytes(delta.substr(off, 1000)), to(rebuilt));
  pj.finish(to(rebuilt));
  EXPECT_EQ(rebuilt, new_data);
}

TEST(RsyncJob, TruncatedDeltaIsAnError) {
  std::string old_data = random_bytes(100000, 2);
  std::string sig, delta, out;
  auto to = [](std::string& s) {
    return [&s](std::span<const std::byte> b) {
      s.append(reinterpret_cast<const char*>(b.data()), b.size());
    };
  };
  RsyncJob sj = RsyncJob::signature(old_data.size(), "old");
  sj.feed(bytes(old_data), to(sig));
  sj.finish(to(sig));
  SignatureLoader loader("x");
  loader.feed(bytes(sig));
  loader.finish();
  DeltaJob dj(loader, "x");
  dj.feed(bytes(random_bytes(5000, 3) + old_data), to(delta));
  dj.finish(to(delta));
  coffer::test::TempDir dir;
  coffer::test::write_text(dir / "basis", old_data);
  coffer::UniqueFd basis = coffer::open_fd(dir / "basis", O_RDONLY);
  RsyncJob pj = RsyncJob::patch(basis.get(), "basis");
  pj.feed(bytes(delta.substr(0, delta.size() / 2)), to(out));
  EXPECT_THROW(pj.finish(to(out)), coffer::Error);
}
