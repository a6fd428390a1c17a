#include "sshd.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "coffer/util/fd.hpp"

namespace fs = std::filesystem;

namespace coffer::test {
namespace {

constexpr const char* kSshd = "/usr/sbin/sshd";

// A port the kernel just handed out; sshd binds it a moment later (retried if someone was faster).
int free_port() {
  UniqueFd sock(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (!sock || ::bind(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(sock.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0)
    throw std::runtime_error("cannot find a free loopback port");
  return ntohs(addr.sin_port);
}

bool port_accepts(int port) {
  UniqueFd sock(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  return sock && ::connect(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
}

struct ProcInfo {
  pid_t ppid = 0;
  std::string comm;
  char state = '?';
};

// /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may itself hold spaces and parentheses.
std::optional<ProcInfo> proc_info(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return std::nullopt;
  auto open = line.find('('), close = line.rfind(')');
  if (open == std::string::npos || close == std::string::npos) return std::nullopt;
  ProcInfo info;
  info.comm = line.substr(open + 1, close - open - 1);
  std::istringstream rest(line.substr(close + 2));
  rest >> info.state >> info.ppid;
  return info;
}

bool alive(pid_t pid) {
  auto info = proc_info(pid);
  return info && info->state != 'Z';
}

std::string read_all(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void append_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::app);
  out << text;
}

std::string host_block(const std::string& alias, int port, const std::string& user,
                       const fs::path& key, const fs::path& known_hosts) {
  // Absolute paths only: libssh expands '~' from the passwd entry, not from $HOME.
  std::ostringstream out;
  out << "Host " << alias << "\n  HostName 127.0.0.1\n  Port " << port << "\n  User " << user
      << "\n  IdentityFile " << key.native() << "\n  IdentitiesOnly yes\n  UserKnownHostsFile "
      << known_hosts.native()
      << "\n  GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n  BatchMode yes\n\n";
  return out.str();
}

}  // namespace

Sshd::Sshd() : dir_(tmp_.path()), home_(dir_ / "home"), log_(dir_ / "sshd/sshd.log") {
  const passwd* pw = ::getpwuid(::getuid());
  if (!pw) throw std::runtime_error("no passwd entry for the test user");
  user_ = pw->pw_name;
  fs::create_directories(dir_ / "sshd");
  fs::create_directories(home_ / ".ssh");
  fs::permissions(home_ / ".ssh", fs::perms::owner_all);
  // sshd refuses to start without its privilege separation directory.
  if (::getuid() == 0) fs::create_directories("/run/sshd");

  run_checked({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "coffer-test-host", "-f",
               (dir_ / "sshd/host_key").native()},
              "generate host key", dir_.native());
  fs::path user_key = new_key("coffer_test_key");
  append_text(dir_ / "sshd/authorized_keys", read_all(user_key.native() + ".pub"));

  for (int attempt = 0; attempt < 5; ++attempt) {
    port_ = free_port();
    if (try_start()) break;
    server_.reset();
    if (attempt == 4)
      throw std::runtime_error("sshd did not start; its log (" + log_.native() + "):\n" +
                               read_all(log_));
  }
  write_text(known_hosts(), known_hosts_line() + "\n", 0600);
  write_text(ssh_config(), host_block(alias_, port_, user_, user_key, known_hosts()), 0600);
}

bool Sshd::try_start() {
  std::ostringstream cfg;
  cfg << "Port " << port_ << "\nListenAddress 127.0.0.1\n"
      << "HostKey " << (dir_ / "sshd/host_key").native() << "\n"
      << "PidFile " << (dir_ / "sshd/sshd.pid").native() << "\n"
      << "AuthorizedKeysFile " << (dir_ / "sshd/authorized_keys").native() << "\n"
      << "StrictModes no\nUsePAM no\nPermitRootLogin yes\nPubkeyAuthentication yes\n"
      << "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUseDNS no\n"
      << "PrintMotd no\nPrintLastLog no\nMaxStartups 64\nMaxSessions 64\nLogLevel VERBOSE\n";
  write_text(dir_ / "sshd/sshd_config", cfg.str(), 0600);

  SpawnOptions spawn;
  spawn.null_stdin = true;
  server_ =
      std::make_unique<Process>(std::vector<std::string>{kSshd, "-D", "-E", log_.native(), "-f",
                                                         (dir_ / "sshd/sshd_config").native()},
                                spawn);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    if (port_accepts(port_)) return true;
    if (!alive(server_->pid())) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

Sshd::~Sshd() {
  if (!server_) return;
  kill_connections();
  server_->kill(SIGTERM);
  server_->wait();
}

fs::path Sshd::new_key(const std::string& name) const {
  fs::path key = home_ / ".ssh" / name;
  run_checked({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", key.native()},
              "generate user key", key.native());
  return key;
}

std::string Sshd::known_hosts_line() const {
  std::istringstream pub(read_all(host_public_key()));
  std::string type, blob;
  pub >> type >> blob;
  return "[127.0.0.1]:" + std::to_string(port_) + " " + type + " " + blob;
}

std::vector<std::string> Sshd::env() const {
  return {"HOME=" + home_.native(), "SSH_AUTH_SOCK="};
}

std::string Sshd::add_forced_command(const std::string& command) {
  std::string alias = alias_ + "-forced-" + std::to_string(++forced_count_);
  fs::path key = new_key("forced_" + std::to_string(forced_count_));
  std::string escaped;
  for (char c : command) {
    if (c == '"' || c == '\\') escaped += '\\';
    escaped += c;
  }
  append_text(dir_ / "sshd/authorized_keys",
              "command=\"" + escaped + "\",no-pty,no-port-forwarding,no-agent-forwarding " +
                  read_all(key.native() + ".pub"));
  append_text(ssh_config(), host_block(alias, port_, user_, key, known_hosts()));
  return alias;
}

fs::path Sshd::make_unauthorized_key(const std::string& name) {
  return new_key(name);
}

int Sshd::kill_connections() {
  if (!server_) return 0;
  std::map<pid_t, ProcInfo> procs;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    pid_t pid = std::atoi(entry.path().filename().c_str());
    if (pid <= 0) continue;
    if (auto info = proc_info(pid)) procs[pid] = *info;
  }
  auto descends_from_listener = [&](pid_t pid) {
    for (int depth = 0; depth < 16 && pid > 1; ++depth) {
      auto it = procs.find(pid);
      if (it == procs.end()) return false;
      pid = it->second.ppid;
      if (pid == server_->pid()) return true;
    }
    return false;
  };
  std::vector<pid_t> victims;
  for (const auto& [pid, info] : procs)
    if (info.comm == "sshd" && info.state != 'Z' && descends_from_listener(pid))
      victims.push_back(pid);
  for (pid_t pid : victims) ::kill(pid, SIGKILL);
  // Wait until they are dead (zombies hold no sockets), so the drop has happened on return.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  for (pid_t pid : victims)
    while (alive(pid) && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
  return static_cast<int>(victims.size());
}

namespace {
std::unique_ptr<Sshd>& shared_sshd() {
  static std::unique_ptr<Sshd> instance;
  return instance;
}
}  // namespace

void SshdEnvironment::SetUp() {
  if (::access(kSshd, X_OK) != 0) GTEST_SKIP() << kSshd << " is not installed";
  shared_sshd() = std::make_unique<Sshd>();
  ::setenv("HOME", shared_sshd()->home().c_str(), 1);
  ::unsetenv("SSH_AUTH_SOCK");
}

void SshdEnvironment::TearDown() {
  shared_sshd().reset();
}

Sshd& SshdEnvironment::sshd() {
  if (!shared_sshd()) throw std::runtime_error("SshdEnvironment is not registered or not set up");
  return *shared_sshd();
}

}  // namespace coffer::test
