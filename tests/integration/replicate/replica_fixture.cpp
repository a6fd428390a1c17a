#include "replica_fixture.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>
#include <csignal>
#include <random>
#include <thread>

#include "coffer/util/fd.hpp"
#include "run_coffer.hpp"

namespace coffer::test {

VaultImage make_vault(const std::filesystem::path& dir, const std::string& name, std::uint64_t size,
                      std::uint64_t data, unsigned seed) {
  VaultImage v{dir / (name + ".img"), dir / (name + ".key")};
  write_random(v.key, 0, 64, seed + 1000);
  {
    UniqueFd fd = open_fd(v.image, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0) throw std::runtime_error("truncate");
  }
  run_checked({"cryptsetup", "luksFormat", "-q", "--type", "luks2", "--sector-size", "4096",
               "--pbkdf", "argon2id", "--pbkdf-memory", "8192", "--pbkdf-force-iterations", "4",
               "--pbkdf-parallel", "1", "--key-file", v.key.native(), v.image.native()},
              "luksFormat", v.image.native());
  if (data) write_random(v.image, kLuksHeader, data, seed);
  return v;
}

void write_random(const std::filesystem::path& path, std::uint64_t offset, std::uint64_t length,
                  unsigned seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::byte> buf(std::min<std::uint64_t>(length, 4 * kMiB));
  UniqueFd fd = open_fd(path, O_WRONLY | O_CREAT, 0600);
  for (std::uint64_t done = 0; done < length;) {
    std::uint64_t n = std::min<std::uint64_t>(buf.size(), length - done);
    for (std::size_t i = 0; i < n; i += 8) {
      std::uint64_t v = rng();
      std::memcpy(buf.data() + i, &v, std::min<std::size_t>(8, n - i));
    }
    pwrite_all(fd.get(), std::span(buf).first(n), static_cast<off_t>(offset + done), path);
    done += n;
  }
}

void write_zeros(const std::filesystem::path& path, std::uint64_t offset, std::uint64_t length) {
  std::vector<std::byte> zeros(length);
  UniqueFd fd = open_fd(path, O_WRONLY);
  pwrite_all(fd.get(), zeros, static_cast<off_t>(offset), path);
}

void copy_range(const std::filesystem::path& from, const std::filesystem::path& to,
                std::uint64_t offset, std::uint64_t length) {
  std::vector<std::byte> buf(length);
  UniqueFd in = open_fd(from, O_RDONLY), out = open_fd(to, O_WRONLY);
  pread_full(in.get(), buf, static_cast<off_t>(offset), from);
  pwrite_all(out.get(), buf, static_cast<off_t>(offset), to);
}

std::uint64_t allocated_bytes(const std::filesystem::path& path) {
  struct stat st {};
  ::stat(path.c_str(), &st);
  return static_cast<std::uint64_t>(st.st_blocks) * 512;
}

nlohmann::json last_json(const std::string& out, const std::string& type) {
  nlohmann::json found;
  std::size_t pos = 0;
  while (pos < out.size()) {
    std::size_t nl = out.find('\n', pos);
    std::string line = out.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.is_object() && (type.empty() || j.value("type", "") == type))
      found = j;
    if (nl == std::string::npos) break;
    pos = nl + 1;
  }
  return found;
}

pid_t helper_pid(const std::filesystem::path& dir) {
  std::error_code ec;
  if (!std::filesystem::exists(dir / "lock", ec)) return 0;
  std::string text = read_file(dir / "lock");
  return text.empty() ? 0 : static_cast<pid_t>(std::stol(text));
}

bool process_alive(pid_t pid) {
  if (pid <= 0 || ::kill(pid, 0) != 0) return false;
  // A zombie (exited, not yet reaped by its parent) counts as gone.
  std::string stat;
  try {
    stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  } catch (...) {
    return false;
  }
  auto close = stat.rfind(')');
  return close == std::string::npos || close + 2 >= stat.size() || stat[close + 2] != 'Z';
}

void wait_gone(pid_t pid) {
  for (int i = 0; i < 500 && process_alive(pid); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
}

DirWatch::DirWatch(const std::filesystem::path& dir, std::uint32_t mask) {
  fd_ = ::inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  if (fd_ < 0 || ::inotify_add_watch(fd_, dir.c_str(), mask) < 0)
    throw std::runtime_error("inotify on " + dir.native());
}

DirWatch::~DirWatch() {
  if (fd_ >= 0) ::close(fd_);
}

bool DirWatch::wait_for(const std::string& name, std::uint32_t mask,
                        std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  alignas(inotify_event) char buf[8192];
  for (;;) {
    while (!pending_.empty()) {
      auto [n, m] = pending_.front();
      pending_.erase(pending_.begin());
      if ((m & mask) && n == name) return true;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    ssize_t n = ::read(fd_, buf, sizeof buf);
    for (ssize_t off = 0; off < n;) {
      auto* e = reinterpret_cast<inotify_event*>(buf + off);
      if (e->len) pending_.emplace_back(e->name, e->mask);
      off += static_cast<ssize_t>(sizeof(inotify_event) + e->len);
    }
  }
}

Background::Background(const std::vector<std::string>& args, const std::vector<std::string>& env) {
  std::vector<std::string> argv{coffer_bin()};
  argv.insert(argv.end(), args.begin(), args.end());
  SpawnOptions o;
  o.pipe_stdout = true;
  o.pipe_stderr = true;
  o.null_stdin = true;
  o.env_overrides = env;
  proc_ = std::make_unique<Process>(argv, o);
}

RunResult Background::finish() {
  RunResult r;
  // Small outputs: drain both pipes after exit is fine only if they never fill; read them first.
  for (UniqueFd* fd : {&proc_->stdout_fd(), &proc_->stderr_fd()}) {
    char buf[4096];
    std::string& into = fd == &proc_->stdout_fd() ? r.out : r.err;
    ssize_t n;
    while ((n = ::read(fd->get(), buf, sizeof buf)) > 0)
      into.append(buf, static_cast<std::size_t>(n));
  }
  r.exit_code = proc_->wait();
  return r;
}

void ReplicaTest::SetUp() {
  vault = make_vault(tmp.path(), "vault", 64 * kMiB, 24 * kMiB, 1);
  C = tmp / "C";
  use_paths();
}

void ReplicaTest::use_paths() {
  // C is the configured target "far", so B's state does not depend on where the test dir is.
  write_text(tmp / "coffer.toml", "[vault]\nimage = \"" + vault.image.native() +
                                      "\"\n\n[[target]]\nname = \"far\"\ndest = \"" + C.native() +
                                      "\"\n");
  env = {"COFFER_RUNTIME_DIR=" + (tmp / "run").native(),
         "COFFER_CONFIG=" + (tmp / "coffer.toml").native()};
}

std::vector<std::string> ReplicaTest::args(std::vector<std::string> a) const {
  return a;
}

RunResult ReplicaTest::run(const std::vector<std::string>& a) const {
  return run_coffer(a, {}, env);
}

nlohmann::json ReplicaTest::replicate(const std::vector<std::string>& extra) {
  std::vector<std::string> a{"replicate", "--json",     vault.image.native(),
                             C.native(),  "--key-file", vault.key.native()};
  a.insert(a.end(), extra.begin(), extra.end());
  RunResult r = run(a);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return last_json(r.out, "replicated");
}

RunResult ReplicaTest::verify() const {
  return run({"replica", "verify", vault.image.native(), C.native()});
}

nlohmann::json ReplicaTest::status() const {
  RunResult r = run({"replica", "status", "--json", vault.image.native(), C.native()});
  nlohmann::json j = last_json(r.out);
  j["exit_code"] = r.exit_code;
  j["stderr"] = r.err;
  return j;
}

}  // namespace coffer::test
