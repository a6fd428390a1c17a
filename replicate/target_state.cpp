#include "target_state.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>
#include <charconv>
#include <nlohmann/json.hpp>
#include <sstream>

#include "coffer/util/atomic_file.hpp"
#include "coffer/util/error.hpp"
#include "coffer/util/log.hpp"
#include "coffer/util/units.hpp"

namespace coffer::replicate {
namespace {

std::string hex(const void* p, std::size_t n) {
  return to_hex(p, n);
}

template <std::size_t N>
void from_hex(std::string_view text, std::array<std::byte, N>& out, const std::string& what) {
  if (text.size() != 2 * N) fail(ErrorKind::failed, "read", what, "malformed hex value");
  for (std::size_t i = 0; i < N; ++i) {
    unsigned v = 0;
    auto r = std::from_chars(text.data() + 2 * i, text.data() + 2 * i + 2, v, 16);
    if (r.ec != std::errc()) fail(ErrorKind::failed, "read", what, "malformed hex value");
    out[i] = static_cast<std::byte>(v);
  }
}

nlohmann::json run_json(const RunRecord& r) {
  return {{"time", r.time},
          {"ok", r.ok},
          {"message", r.message},
          {"bytes_sent", r.bytes_sent},
          {"bytes_changed", r.bytes_changed},
          {"seconds", r.seconds}};
}

RunRecord run_from(const nlohmann::json& j) {
  RunRecord r;
  r.time = j.value("time", std::int64_t{0});
  r.ok = j.value("ok", false);
  r.message = j.value("message", std::string());
  r.bytes_sent = j.value("bytes_sent", std::uint64_t{0});
  r.bytes_changed = j.value("bytes_changed", std::uint64_t{0});
  r.seconds = j.value("seconds", 0.0);
  return r;
}

constexpr const char* kLastRunFile = "last-run.json";
constexpr const char* kLastVerifyFile = "last-verify.json";

// A report that a crash left empty or torn is no report, not an error.
std::optional<RunRecord> load_report(const std::filesystem::path& path) {
  if (!std::filesystem::exists(path)) return std::nullopt;
  nlohmann::json j = nlohmann::json::parse(read_file(path), nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    log::debug("ignoring unreadable report {}", path.native());
    return std::nullopt;
  }
  return run_from(j);
}

// A report that cannot be written is a warning: the run it reports on has its own result.
void save_report(const std::filesystem::path& path, const std::optional<RunRecord>& r) {
  if (!r) return;
  try {
    write_file_atomic(path, run_json(*r).dump(2) + "\n", 0600, Durability::replace_only);
  } catch (const Error& e) {
    log::warn("{} (the report for `replica status` is not updated)", e.what());
  }
}

}  // namespace

std::filesystem::path target_state_dir(const std::filesystem::path& image,
                                       const std::string& target) {
  // Named by the image's real path, so a symlink, ./ or a relative spelling finds the same
  // state; a fork of it would later raise a false integrity alarm. A second hard link has
  // another real path and cannot be told from here, so an image with several names is refused.
  struct stat st {};
  if (::stat(image.c_str(), &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink > 1)
    fail(ErrorKind::failed, "find the replication state of", image.native(),
         fmt::format("the image has {} hard links; its state on B (IMAGE.coffer/) is kept beside "
                     "its real path, so coffer replicates an image with one name only: remove "
                     "the other links",
                     st.st_nlink));
  std::error_code ec;
  std::filesystem::path real = std::filesystem::weakly_canonical(image, ec);
  if (ec) real = std::filesystem::absolute(image).lexically_normal();
  return std::filesystem::path(real.native() + ".coffer") / "targets" / target;
}

TargetState::TargetState(const std::filesystem::path& image, std::string name)
    : dir_(target_state_dir(image, name)) {
  record.name = std::move(name);
}

void TargetState::lock() {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) throw_errno("create state directory", dir_, ec.value());
  std::filesystem::permissions(dir_, std::filesystem::perms::owner_all, ec);
  lock_ = std::make_unique<FileLock>(dir_ / "lock");
}

bool TargetState::load() {
  std::filesystem::path path = dir_ / "state.json";
  if (!std::filesystem::exists(path)) return false;
  std::string text = read_file(path);
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || j.value("format", 0) != 1)
    fail(ErrorKind::failed, "read", path.native(), "not a coffer target state (format 1)");
  std::string name = record.name;
  record = {};
  record.name = name;
  record.dest = j.value("dest", std::string());
  if (auto id = j.value("replica_id", std::string()); !id.empty()) {
    from_hex(id, record.replica_id, path.native());
    record.has_replica_id = true;
  }
  record.generation = j.value("generation", std::uint64_t{0});
  record.time = j.value("time", std::int64_t{0});
  record.image_size = j.value("image_size", std::uint64_t{0});
  record.detect_block_size = j.value("block_size", std::uint32_t{0});
  record.uuid = j.value("uuid", std::string());
  if (auto mac = j.value("manifest_mac", std::string()); !mac.empty())
    from_hex(mac, record.manifest_mac.bytes, path.native());
  // Before the reports had files of their own they were kept here.
  if (j.contains("last_run")) record.last_run = run_from(j["last_run"]);
  if (j.contains("last_verify")) record.last_verify = run_from(j["last_verify"]);
  if (auto r = load_report(dir_ / kLastRunFile)) record.last_run = r;
  if (auto r = load_report(dir_ / kLastVerifyFile)) record.last_verify = r;
  return true;
}

void TargetState::save() const {
  // A state.json from before the reports had their own files: move them out before this
  // rewrite drops them.
  std::error_code ec;
  if (record.last_run && !std::filesystem::exists(dir_ / kLastRunFile, ec)) save_last_run();
  if (record.last_verify && !std::filesystem::exists(dir_ / kLastVerifyFile, ec))
    save_last_verify();
  nlohmann::json j = {
      {"format", 1},
      {"name", record.name},
      {"dest", record.dest},
      {"replica_id", record.has_replica_id ? hex(record.replica_id.data(), 16) : ""},
      {"generation", record.generation},
      {"time", record.time},
      {"image_size", record.image_size},
      {"block_size", record.detect_block_size},
      {"uuid", record.uuid},
      {"manifest_mac", record.generation ? hex(record.manifest_mac.bytes.data(), 32) : ""}};
  write_file_atomic(dir_ / "state.json", j.dump(2) + "\n", 0600);
}

void TargetState::save_last_run() const {
  save_report(dir_ / kLastRunFile, record.last_run);
}

void TargetState::save_last_verify() const {
  save_report(dir_ / kLastVerifyFile, record.last_verify);
}

std::filesystem::path TargetState::digest_path(std::uint64_t gen) const {
  return dir_ / fmt::format("digest.{}", gen);
}

std::filesystem::path TargetState::manifest_path(std::uint64_t gen) const {
  return dir_ / fmt::format("manifest.{}", gen);
}

std::optional<Digest> TargetState::load_digest(std::uint64_t gen, std::uint32_t block_size) const {
  auto d = Digest::load(digest_path(gen));
  if (d && d->block_size != block_size) {
    log::info("block size changed from {} to {}: comparing every block with the manifest once",
              format_size(d->block_size), format_size(block_size));
    return std::nullopt;
  }
  return d;
}

std::optional<Manifest> TargetState::load_manifest(std::uint64_t gen) const {
  std::filesystem::path path = manifest_path(gen);
  if (!std::filesystem::exists(path)) return std::nullopt;
  try {
    return Manifest::load(path);
  } catch (const Error& e) {
    log::warn("ignoring damaged manifest copy: {}", e.what());
    return std::nullopt;
  }
}

std::future<void> TargetState::write_pending(std::uint64_t gen, Digest digest,
                                             const Manifest& manifest) const {
  // A digest of `gen` left by an earlier, interrupted attempt may describe other bytes: it goes
  // first, and the manifest's directory fsync makes that durable before C commits. The new one
  // appears (atomically) only once written, so after a crash there is the right digest or none.
  std::filesystem::path path = digest_path(gen);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT)
    throw_errno("remove stale digest", path, errno);
  auto digest_saved =
      std::async(std::launch::async, [d = std::move(digest), path] { d.save(path); });
  manifest.save(manifest_path(gen));
  return digest_saved;
}

void TargetState::promote(const Manifest& m) {
  append_history(m);
  record.generation = m.header.generation;
  record.time = m.header.time;
  record.image_size = m.header.image_size;
  record.detect_block_size = m.header.detect_block_size;
  record.manifest_mac = m.mac;
  record.replica_id = m.header.replica_id;
  record.has_replica_id = true;
  save();
  prune(record.generation);
}

void TargetState::append_history(const Manifest& m) const {
  std::filesystem::path path = dir_ / "history";
  std::string line = fmt::format("{} {} {} {}\n", m.header.generation, m.header.time,
                                 m.header.image_size, hex(m.mac.bytes.data(), 32));
  UniqueFd fd = open_fd(path, O_WRONLY | O_CREAT | O_APPEND, 0600);
  write_all(fd.get(), line, path);
  fsync_fd(fd.get(), path);
}

std::optional<HistoryEntry> TargetState::find_in_history(const Hash256& mac) const {
  std::filesystem::path path = dir_ / "history";
  if (!std::filesystem::exists(path)) return std::nullopt;
  std::istringstream in(read_file(path));
  std::string want = hex(mac.bytes.data(), 32);
  HistoryEntry e;
  std::string mac_hex;
  while (in >> e.generation >> e.time >> e.image_size >> mac_hex) {
    if (mac_hex == want) {
      e.mac = mac;
      return e;
    }
  }
  return std::nullopt;
}

void TargetState::prune(std::uint64_t keep) const {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir_, ec)) {
    std::string name = e.path().filename();
    auto dot = name.find('.');
    if (dot == std::string::npos) continue;
    if (name.find(".tmp.") != std::string::npos) {  // left by a crash inside AtomicFile
      std::filesystem::remove(e.path(), ec);
      continue;
    }
    std::string stem = name.substr(0, dot), num = name.substr(dot + 1);
    if ((stem != "digest" && stem != "manifest") || num.empty() ||
        num.find_first_not_of("0123456789") != std::string::npos)
      continue;
    std::uint64_t gen = std::stoull(num);
    if (gen != keep && gen != keep + 1) std::filesystem::remove(e.path(), ec);
  }
}

}  // namespace coffer::replicate
