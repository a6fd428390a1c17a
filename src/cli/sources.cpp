// Which kind of REPO restore/ls/find/diff/check were given, and opening it (sources.hpp).
#include "sources.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "coffer/reader/fs.hpp"
#include "coffer/replicate/replica_reader.hpp"
#include "coffer/util/error.hpp"
#include "coffer/util/fd.hpp"
#include "coffer/util/remote.hpp"
#include "coffer/vault/vault.hpp"

namespace coffer::cli {

bool is_luks2_image(const std::filesystem::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return false;
  // "LUKS\xba\xbe", then the big-endian version 2 (docs/vault.md; cryptsetup's luks2.h).
  unsigned char magic[8] = {};
  if (::pread(fd.get(), magic, sizeof magic, 0) != static_cast<ssize_t>(sizeof magic)) return false;
  static const unsigned char kLuks2[8] = {'L', 'U', 'K', 'S', 0xba, 0xbe, 0, 2};
  return std::memcmp(magic, kLuks2, sizeof magic) == 0;
}

namespace {

// The image's bytes from C, through the replica reader (fetched once, checked, cached).
class ReplicaCipherSource final : public reader::CipherSource {
 public:
  explicit ReplicaCipherSource(std::shared_ptr<replicate::ReplicaReader> r) : r_(std::move(r)) {}
  std::uint64_t size() const override { return r_->image_size(); }
  void read(std::uint64_t offset, std::span<std::byte> out) const override {
    r_->read(offset, out);
  }
  void will_read(std::span<const std::pair<std::uint64_t, std::uint64_t>> ranges) const override {
    r_->prefetch(ranges);
  }

 private:
  std::shared_ptr<replicate::ReplicaReader> r_;
};

// A local directory holding a replica (its marker file, docs/formats/journal.md).
bool is_local_replica(const std::filesystem::path& dir) {
  struct stat st {};
  return ::stat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode) &&
         ::lstat((dir / "coffer-replica").c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

}  // namespace

void SourceOptions::add_to(CLI::App& cmd) {
  secrets.add_to(cmd);
  cmd.add_option("--remote-command", remote_command,
                 "Program that starts coffer on C, for a replica source (default: coffer)");
  cmd.add_option("--ssh-config", ssh_config, "SSH client config instead of ~/.ssh/config");
  cmd.add_option("--ssh-identity", ssh_identity, "SSH identity file to try first");
  cmd.add_option("--ssh-port", ssh_port, "SSH port (wins over the config's)");
}

std::shared_ptr<restore::TreeSource> SourceOptions::open(Context& ctx, const std::string& repo) {
  if (is_luks2_image(repo)) {
    config::Credentials creds = secrets.load(ctx, repo);
    auto image = std::make_shared<reader::Image>(repo, creds);
    auto fs = std::make_shared<const reader::FileSystem>(image);
    return restore::image_source(std::move(fs), repo);
  }
  if (!parse_remote(repo) && !is_local_replica(repo)) return nullptr;
  // Asked for before connecting, so a prompt never waits in the middle of a session with C.
  auto creds = std::make_shared<config::Credentials>(secrets.load(ctx, repo));
  std::filesystem::path runtime = ctx.runtime_dir();
  replicate::ReplicaReaderOptions o;
  o.source = repo;
  o.remote_command = remote_command;
  o.ssh.config_file = ssh_config;
  o.ssh.identity = ssh_identity;
  o.ssh.port = ssh_port;
  // As `replica fetch`: the header C sent (checked against the manifest) is unlocked here.
  o.unlock = [creds, runtime, repo](const std::filesystem::path& header) {
    vault::Location where{header, runtime};
    try {
      return replicate::UnlockedHeader{vault::volume_key(where, *creds), vault::status(where).uuid};
    } catch (const Error& e) {
      if (e.kind() != ErrorKind::bad_key) throw;
      throw Error(e.kind(), "unlock the header of the replica at", repo,
                  e.reason().empty() ? std::string(e.what()) : e.reason(), {});
    }
  };
  o.header_areas = [runtime](const std::filesystem::path& header) {
    return vault::unlock_areas(vault::Location{header, runtime});
  };
  auto r = std::make_shared<replicate::ReplicaReader>(o);
  stats_ = [r] {
    replicate::ReplicaReadStats s = r->stats();
    return FetchStats{s.blocks, s.bytes, s.received};
  };
  auto image = std::make_shared<reader::Image>(r->header_file(), repo, r->volume_key(),
                                               std::make_shared<ReplicaCipherSource>(r));
  auto fs = std::make_shared<const reader::FileSystem>(image);
  return restore::image_source(std::move(fs), repo);
}

std::shared_ptr<restore::TreeSource> SourceOptions::open_any(Context& ctx,
                                                             const std::string& repo) {
  if (auto s = open(ctx, repo)) return s;
  if (!std::filesystem::is_directory(repo))
    fail(ErrorKind::missing, "open repository", repo, "no such directory");
  return restore::repository_source(repo);
}

std::optional<FetchStats> SourceOptions::fetched() const {
  if (!stats_) return std::nullopt;
  return stats_();
}

}  // namespace coffer::cli
