// The one file that talks to libssh. Its conventions (return codes, ssh_get_error text, the
// blocking flag) end here; everything above sees ByteStream and coffer::Error.
//
// Threads: libssh sessions are not thread-safe, yet pipelined protocols read in one thread while
// another writes. So after setup the session is non-blocking, every libssh call happens under
// one mutex, and nobody sleeps while holding it: a waiter polls the socket (and an eventfd that
// the other thread pokes when it has pulled data off the socket on the waiter's behalf).
#include "coffer/util/ssh.hpp"

#include <fmt/format.h>
#include <libssh/libssh.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <mutex>

#include "coffer/util/error.hpp"
#include "coffer/util/signals.hpp"
#include "ssh_config.hpp"

namespace coffer {
namespace {

constexpr std::size_t kStderrKeep = 4096;
constexpr std::size_t kWriteChunk = 256 * 1024;
constexpr int kWaitMs = 250;           // how often a blocked wait looks at the interrupt flag
constexpr long kConnectTimeoutS = 30;  // connect and authenticate; ConnectTimeout overrides it
constexpr const char* kCipherPreference =
    "aes128-gcm@openssh.com,aes256-gcm@openssh.com,chacha20-poly1305@openssh.com,aes128-ctr,aes256-"
    "ctr";

struct SessionFree {
  void operator()(ssh_session s) const noexcept {
    ssh_disconnect(s);
    ssh_free(s);
  }
};
struct ChannelFree {
  void operator()(ssh_channel c) const noexcept { ssh_channel_free(c); }
};
struct KeyFree {
  void operator()(ssh_key k) const noexcept { ssh_key_free(k); }
};
using SessionPtr = std::unique_ptr<ssh_session_struct, SessionFree>;
using ChannelPtr = std::unique_ptr<ssh_channel_struct, ChannelFree>;
using KeyPtr = std::unique_ptr<ssh_key_struct, KeyFree>;

std::string option_text(ssh_session s, ssh_options_e option) {
  char* value = nullptr;
  if (ssh_options_get(s, option, &value) != SSH_OK || value == nullptr) return {};
  std::string text(value);
  ssh_string_free_char(value);
  return text;
}

std::string host_port(const std::string& host, unsigned port) {
  if (host.find(':') != std::string::npos) return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host, port);
}

// "SHA256:..." of the key the server offered, so a user can compare it out of band.
std::string server_fingerprint(ssh_session s) {
  ssh_key raw = nullptr;
  if (ssh_get_server_publickey(s, &raw) != SSH_OK) return "(no key)";
  KeyPtr key(raw);
  unsigned char* hash = nullptr;
  std::size_t len = 0;
  if (ssh_get_publickey_hash(key.get(), SSH_PUBLICKEY_HASH_SHA256, &hash, &len) != 0)
    return "(unknown)";
  char* text = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, len);
  ssh_clean_pubkey_hash(&hash);
  std::string fingerprint = text ? text : "(unknown)";
  ssh_string_free_char(text);
  return fingerprint;
}

// "; coffer ignores StrictHostKeyChecking no (FILE) ..." when the user's config asked for
// anything but a strict check, so that whoever wrote it learns why it had no effect.
std::string strict_setting_note(const std::vector<std::filesystem::path>& config_files,
                                const std::string& host) {
  auto setting = ssh_config_value(config_files, host, "StrictHostKeyChecking");
  if (!setting) return {};
  std::string value = setting->value;
  for (auto& c : value) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (value == "yes") return {};
  return fmt::format(
      "; coffer ignores StrictHostKeyChecking {} ({}): it never accepts an "
      "unknown or changed host key",
      setting->value, setting->file.native());
}

void verify_host_key(ssh_session s, const std::string& where, const std::string& note) {
  auto state = ssh_session_is_known_server(s);
  if (state == SSH_KNOWN_HOSTS_OK) return;
  std::string known = option_text(s, SSH_OPTIONS_KNOWNHOSTS);
  std::string key = server_fingerprint(s);
  switch (state) {
    case SSH_KNOWN_HOSTS_CHANGED:
      fail(ErrorKind::failed, "verify host key of", where,
           fmt::format("the host key CHANGED: the server offered {}, which does not match {} "
                       "(someone may be intercepting; if the host was reinstalled, replace its "
                       "entry, e.g. ssh-keygen -R){}",
                       key, known, note));
    case SSH_KNOWN_HOSTS_OTHER:
      fail(ErrorKind::failed, "verify host key of", where,
           fmt::format("the server offered a {} key of another type than the one recorded in {}"
                       " (coffer does not switch key types on its own){}",
                       key, known, note));
    case SSH_KNOWN_HOSTS_UNKNOWN:
    case SSH_KNOWN_HOSTS_NOT_FOUND:
      fail(ErrorKind::failed, "verify host key of", where,
           fmt::format("unknown host key {}: not in {} (coffer never accepts a key on first use; "
                       "check the fingerprint and add the key, e.g. with ssh(1) or ssh-keyscan){}",
                       key, known, note));
    default:
      fail(ErrorKind::failed, "verify host key of", where,
           fmt::format("cannot check {} for {}: {}{}", known, key, ssh_get_error(s), note));
  }
}

void authenticate(ssh_session s, const SshOptions& opts, const std::string& user,
                  const std::string& where) {
  if (opts.identity) {
    ssh_key raw = nullptr;
    if (ssh_pki_import_privkey_file(opts.identity->c_str(), nullptr, nullptr, nullptr, &raw) !=
        SSH_OK)
      fail(ErrorKind::usage, "load ssh identity", opts.identity->native(),
           "cannot read the private key (a key with a passphrase must be loaded into ssh-agent)");
    KeyPtr key(raw);
    if (ssh_userauth_publickey(s, nullptr, key.get()) == SSH_AUTH_SUCCESS) return;
  }
  int rc = ssh_userauth_publickey_auto(s, nullptr, nullptr);
  if (rc == SSH_AUTH_SUCCESS) return;
  if (rc == SSH_AUTH_ERROR)
    fail(ErrorKind::failed, "authenticate as " + user + " to", where, ssh_get_error(s));
  fail(ErrorKind::failed, "authenticate as " + user + " to", where,
       fmt::format("no key was accepted (tried {}ssh-agent and the identity files of the ssh "
                   "config){}",
                   opts.identity ? opts.identity->native() + ", " : "",
                   rc == SSH_AUTH_PARTIAL ? "; the server wants a further method" : ""));
}

}  // namespace

struct SshChannelStream::Impl {
  SessionPtr session;  // declared first: destroyed after the channel
  ChannelPtr channel;
  std::string peer, endpoint, where;
  UniqueFd wake;  // eventfd

  mutable std::mutex mu;
  std::string stderr_tail;
  bool eof = false, write_closed = false;
  int readers_waiting = 0;  // read_some calls asleep in wait(): the only ones worth poking
  std::optional<int> exit_status;
  std::atomic<std::uint64_t> sent{0}, received{0};

  ~Impl() {
    std::lock_guard lock(mu);
    if (!channel || !session) return;
    if (ssh_channel_is_open(channel.get())) ssh_channel_close(channel.get());
    ssh_blocking_flush(session.get(), 2000);  // a goodbye, not worth a hang
  }

  [[noreturn]] void fail_locked(std::string_view op) {
    std::string reason = ssh_get_error(session.get());
    if (reason.empty()) reason = "the channel was closed";
    std::string line = last_line_locked();
    if (!line.empty()) reason += "; remote stderr: " + line;
    fail(ErrorKind::failed, op, where, reason);
  }

  std::string last_line_locked() const {
    auto end = stderr_tail.find_last_not_of("\r\n");
    if (end == std::string::npos) return {};
    auto begin = stderr_tail.find_last_of('\n', end);
    return stderr_tail.substr(begin == std::string::npos ? 0 : begin + 1, end - begin);
  }

  void drain_stderr_locked() {
    std::array<char, 4096> buf;
    for (;;) {
      int n = ssh_channel_read_nonblocking(channel.get(), buf.data(), buf.size(), 1);
      if (n <= 0) return;
      stderr_tail.append(buf.data(), static_cast<std::size_t>(n));
      if (stderr_tail.size() > kStderrKeep) stderr_tail.erase(0, stderr_tail.size() - kStderrKeep);
    }
  }

  // Bytes libssh holds for the socket. (ssh_get_poll_flags would not do: its WRITE_PENDING only
  // says POLLOUT is still registered, which stays set after the buffer has drained.)
  bool write_pending_locked() { return (ssh_get_status(session.get()) & SSH_WRITE_PENDING) != 0; }

  // The connection is gone (libssh saw the peer close or reset it and closed its socket): bytes
  // still queued will never leave, and there is no descriptor left to wait on.
  bool connection_lost_locked() {
    return (ssh_get_status(session.get()) & (SSH_CLOSED | SSH_CLOSED_ERROR)) != 0 ||
           ssh_get_fd(session.get()) < 0;
  }

  // Wakes a reader sleeping in wait() when this thread's libssh calls have buffered its data.
  void poke_reader_locked() {
    if (readers_waiting == 0 || ssh_channel_poll(channel.get(), 0) == 0) return;
    std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake.get(), &one, sizeof one);
  }

  // Sleeps (without the lock) until the socket or the eventfd has something, or kWaitMs passed.
  void wait(bool want_write) {
    std::array<pollfd, 2> fds{};
    fds[0].fd = ssh_get_fd(session.get());
    fds[0].events = static_cast<short>(POLLIN | (want_write ? POLLOUT : 0));
    fds[1].fd = wake.get();
    fds[1].events = POLLIN;
    int rc = ::poll(fds.data(), fds.size(), kWaitMs);
    if (rc < 0 && errno != EINTR) throw_errno("wait for", where, errno);
    if (rc > 0 && (fds[1].revents & POLLIN)) {
      std::uint64_t count = 0;
      [[maybe_unused]] auto n = ::read(wake.get(), &count, sizeof count);
    }
    if (interrupted()) fail(ErrorKind::interrupted, "wait for", where, "interrupted by a signal");
  }

  // Hands everything libssh buffered to the kernel, releasing the lock while the socket is full.
  void flush(std::unique_lock<std::mutex>& lock) {
    for (;;) {
      if (ssh_blocking_flush(session.get(), 0) == SSH_ERROR) fail_locked("send to");
      poke_reader_locked();
      if (!write_pending_locked()) return;
      if (connection_lost_locked()) fail_locked("send to");
      lock.unlock();
      wait(true);
      lock.lock();
    }
  }
};

SshChannelStream::SshChannelStream(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SshChannelStream::~SshChannelStream() = default;

const std::string& SshChannelStream::peer() const {
  return impl_->peer;
}
const std::string& SshChannelStream::endpoint() const {
  return impl_->endpoint;
}
std::uint64_t SshChannelStream::bytes_sent() const {
  return impl_->sent;
}
std::uint64_t SshChannelStream::bytes_received() const {
  return impl_->received;
}

std::string SshChannelStream::stderr_tail() const {
  std::lock_guard lock(impl_->mu);
  return impl_->stderr_tail;
}

std::string SshChannelStream::last_stderr_line() const {
  std::lock_guard lock(impl_->mu);
  return impl_->last_line_locked();
}

std::size_t SshChannelStream::read_some(std::span<std::byte> buf) {
  if (buf.empty()) return 0;
  auto want = static_cast<std::uint32_t>(std::min<std::size_t>(buf.size(), 1U << 30));
  auto& d = *impl_;
  for (;;) {
    bool want_write;
    {
      std::lock_guard lock(d.mu);
      if (d.eof) return 0;
      d.drain_stderr_locked();
      int n = ssh_channel_read_nonblocking(d.channel.get(), buf.data(), want, 0);
      if (n > 0) {
        d.received += static_cast<std::uint64_t>(n);
        return static_cast<std::size_t>(n);
      }
      if (n == SSH_EOF || ssh_channel_is_eof(d.channel.get())) {
        d.drain_stderr_locked();
        d.eof = true;
        return 0;
      }
      if (n == SSH_ERROR || d.connection_lost_locked()) d.fail_locked("read from");
      if (ssh_blocking_flush(d.session.get(), 0) == SSH_ERROR) d.fail_locked("send to");
      want_write = d.write_pending_locked();
      ++d.readers_waiting;
    }
    try {
      d.wait(want_write);
    } catch (...) {
      std::lock_guard lock(d.mu);
      --d.readers_waiting;
      throw;
    }
    std::lock_guard lock(d.mu);
    --d.readers_waiting;
  }
}

void SshChannelStream::write_all(std::span<const std::byte> data) {
  auto& d = *impl_;
  std::unique_lock lock(d.mu);
  if (d.write_closed)
    fail(ErrorKind::failed, "write to", d.where, "stream already closed for writing");
  while (!data.empty()) {
    d.drain_stderr_locked();
    auto chunk = static_cast<std::uint32_t>(std::min(data.size(), kWriteChunk));
    int n = ssh_channel_write(d.channel.get(), data.data(), chunk);
    if (n < 0) d.fail_locked("write to");
    d.poke_reader_locked();
    data = data.subspan(static_cast<std::size_t>(n));
    d.sent += static_cast<std::uint64_t>(n);
    if (n > 0) continue;
    // The peer's window is full: sleep until it grants more (or our queue drains).
    if (!ssh_channel_is_open(d.channel.get()) || ssh_channel_is_eof(d.channel.get()) ||
        d.connection_lost_locked())
      d.fail_locked("write to");
    bool want_write = d.write_pending_locked();
    lock.unlock();
    d.wait(want_write);
    lock.lock();
  }
  d.flush(lock);
}

void SshChannelStream::close_write() {
  auto& d = *impl_;
  std::unique_lock lock(d.mu);
  if (d.write_closed) return;
  d.write_closed = true;
  if (!ssh_channel_is_open(d.channel.get())) return;  // the peer is gone; nothing to tell it
  if (ssh_channel_send_eof(d.channel.get()) == SSH_ERROR) d.fail_locked("close stream to");
  d.flush(lock);
}

int SshChannelStream::exit_status() {
  try {
    close_write();
  } catch (const Error&) {
    // The connection is gone: there is no status to wait for; the loop below says so.
  }
  auto& d = *impl_;
  std::array<char, 64 * 1024> discard;
  for (;;) {
    bool want_write;
    {
      std::lock_guard lock(d.mu);
      if (d.exit_status) return *d.exit_status;
      d.drain_stderr_locked();
      while (ssh_channel_read_nonblocking(d.channel.get(), discard.data(), discard.size(), 0) > 0) {
      }
      int status = ssh_channel_get_exit_status(d.channel.get());
      // A command killed by a signal sends no status; the channel closes without one.
      if (status >= 0 || !ssh_channel_is_open(d.channel.get()) ||
          !ssh_is_connected(d.session.get())) {
        d.drain_stderr_locked();
        d.eof = true;
        d.exit_status = status >= 0 ? status : -1;
        return *d.exit_status;
      }
      want_write = d.write_pending_locked();
    }
    d.wait(want_write);
  }
}

std::unique_ptr<SshChannelStream> ssh_exec(const RemoteSpec& target,
                                           const std::vector<std::string>& remote_argv,
                                           const SshOptions& opts) {
  std::string command = shell_quote(remote_argv);
  SessionPtr session(ssh_new());
  if (!session) fail(ErrorKind::failed, "start ssh session to", target.host, "out of memory");
  ssh_session s = session.get();
  auto set = [&](ssh_options_e option, const void* value, std::string_view what) {
    if (ssh_options_set(s, option, value) < 0)
      fail(ErrorKind::usage, fmt::format("set ssh {} for", what), target.host, ssh_get_error(s));
  };
  set(SSH_OPTIONS_HOST, target.host.c_str(), "host");
  long timeout = kConnectTimeoutS;
  set(SSH_OPTIONS_TIMEOUT, &timeout, "timeout");
  // libssh 0.10 finds ~/.ssh through getpwuid(), ignoring $HOME; coffer follows $HOME so that a
  // service account or a test can point it elsewhere (OpenSSH's ssh(1) does not).
  if (const char* home = std::getenv("HOME"); home && *home) {
    std::string dir = std::string(home) + "/.ssh";
    set(SSH_OPTIONS_SSH_DIR, dir.c_str(), "directory");
  }
  // AES-GCM first: with AES-NI it encrypts several times faster than chacha20-poly1305, which
  // libssh (like OpenSSH) would otherwise pick, and bulk data is what coffer moves. Set before the
  // config is read, so a Ciphers line there still decides.
  set(SSH_OPTIONS_CIPHERS_C_S, kCipherPreference, "ciphers");
  // Nagle's algorithm holds a small packet (a request, a window adjust) until the previous one is
  // acknowledged, and the peer delays that ACK by up to 40 ms when it has nothing to send: every
  // request/reply exchange of coffer's protocols paid it (a PING took 43 ms on loopback). coffer
  // writes whole frames, so there is nothing for Nagle to coalesce; sshd sets TCP_NODELAY too.
  int nodelay = 1;
  set(SSH_OPTIONS_NODELAY, &nodelay, "TCP_NODELAY");
  set(SSH_OPTIONS_CIPHERS_S_C, kCipherPreference, "ciphers");
  std::vector<std::filesystem::path> config_files;
  if (opts.config_file) {
    config_files = {*opts.config_file};
    if (::access(opts.config_file->c_str(), R_OK) != 0)
      throw_errno("read ssh config", *opts.config_file, errno, ErrorKind::usage);
    if (ssh_options_parse_config(s, opts.config_file->c_str()) < 0)
      fail(ErrorKind::usage, "read ssh config", opts.config_file->native(), ssh_get_error(s));
  } else {
    if (ssh_options_parse_config(s, nullptr) < 0)
      fail(ErrorKind::usage, "read ssh config", "~/.ssh/config", ssh_get_error(s));
    if (const char* home = std::getenv("HOME"); home && *home)
      config_files.push_back(std::filesystem::path(home) / ".ssh/config");
    config_files.emplace_back("/etc/ssh/ssh_config");
  }
  // After the config, which may say "StrictHostKeyChecking no": libssh then reports any key as
  // known. coffer checks host keys whatever the config says (docs/ssh.md).
  int strict = 1;
  set(SSH_OPTIONS_STRICTHOSTKEYCHECK, &strict, "StrictHostKeyChecking");
  // After the config: libssh 0.10 lets the config's User and Port override earlier settings.
  if (!target.user.empty()) set(SSH_OPTIONS_USER, target.user.c_str(), "user");
  if (opts.port) {
    unsigned port = static_cast<unsigned>(*opts.port);
    set(SSH_OPTIONS_PORT, &port, "port");
  }

  unsigned port = 22;
  ssh_options_get_port(s, &port);
  std::string endpoint = host_port(option_text(s, SSH_OPTIONS_HOST), port);
  std::string user = option_text(s, SSH_OPTIONS_USER);
  std::string peer = user.empty() ? target.host : user + "@" + target.host;
  std::string where = endpoint.rfind(target.host + ":", 0) == 0
                          ? (user.empty() ? endpoint : user + "@" + endpoint)
                          : fmt::format("{} ({})", peer, endpoint);

  if (ssh_connect(s) != SSH_OK) fail(ErrorKind::failed, "connect to", where, ssh_get_error(s));
  // The config may name the user only now (ssh_connect applies defaults).
  if (user.empty()) user = option_text(s, SSH_OPTIONS_USER);
  verify_host_key(s, where, strict_setting_note(config_files, target.host));
  authenticate(s, opts, user, where);

  ChannelPtr channel(ssh_channel_new(s));
  if (!channel) fail(ErrorKind::failed, "open channel to", where, ssh_get_error(s));
  if (ssh_channel_open_session(channel.get()) != SSH_OK)
    fail(ErrorKind::failed, "open session channel to", where, ssh_get_error(s));
  if (ssh_channel_request_exec(channel.get(), command.c_str()) != SSH_OK)
    fail(ErrorKind::failed, "run command on", where, ssh_get_error(s));
  ssh_set_blocking(s, 0);

  auto impl = std::make_unique<SshChannelStream::Impl>();
  impl->wake = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!impl->wake) throw_errno("create eventfd for", where, errno);
  impl->session = std::move(session);
  impl->channel = std::move(channel);
  impl->peer = user.empty() ? target.host : user + "@" + target.host;
  impl->endpoint = std::move(endpoint);
  impl->where = std::move(where);
  return std::make_unique<SshChannelStream>(std::move(impl));
}

}  // namespace coffer
