// The handshake, and the three ways a backup runs: local pipe, pull over SSH, push over SSH.
#include <fcntl.h>
#include <unistd.h>
#include <cerrno>
#include <climits>
#include <cstdlib>

#include "coffer/snapshot/layout.hpp"
#include "coffer/transfer/backup.hpp"
#include "coffer/util/error.hpp"
#include "coffer/util/log.hpp"
#include "coffer/util/process.hpp"
#include "coffer/util/remote.hpp"
#include "coffer/util/ssh.hpp"
#include "read_ahead.hpp"
#include "receiver.hpp"
#include "sender.hpp"

namespace coffer::transfer {
namespace fs = std::filesystem;
namespace {

constexpr std::string_view kMagic = "coffer-xfer";
constexpr std::uint64_t kVersion = 1;
using Params = std::vector<std::pair<std::string, std::string>>;

void client_hello(Channel& ch, char agent_role, const Params& params) {
  Encoder e;
  e.raw(kMagic);
  e.uvar(kVersion);
  e.uvar(kVersion);
  e.u8(static_cast<std::uint8_t>(agent_role));
  e.uvar(params.size());
  for (const auto& [k, v] : params) {
    e.bytes(k);
    e.bytes(v);
  }
  ch.send(Msg::hello, e.data());
  Frame f = ch.receive();
  if (f.type != Msg::hello_ok) ch.unexpected(f, "the handshake");
  Decoder d(f.payload, ch.peer());
  if (d.raw(kMagic.size()) != kMagic || d.uvar() != kVersion) d.malformed("not a coffer agent");
}

BackupResult from_stats(const ReceiverStats& s) {
  BackupResult r;
  r.snapshot = s.snapshot;
  r.entries = s.entries;
  r.linked = s.linked;
  r.resumed = s.resumed;
  r.copied = s.copied;
  r.delta_files = s.delta_files;
  r.data_files = s.data_files;
  r.bytes_total = s.bytes_total;
  r.bytes_to_receiver = s.bytes_received;
  r.bytes_to_sender = s.bytes_sent;
  r.warnings = s.warnings;
  r.dry_run = s.dry_run;
  r.new_files = s.new_files;
  r.new_bytes = s.new_bytes;
  r.changed_files = s.changed_files;
  r.changed_bytes = s.changed_bytes;
  r.metadata_files = s.metadata_files;
  r.metadata_bytes = s.metadata_bytes;
  r.unchanged_files = s.unchanged_files;
  r.unchanged_bytes = s.unchanged_bytes;
  return r;
}

Params sender_params(const std::string& path, const BackupRequest& req) {
  Params p{{"path", path}};
  for (const auto& rule : req.filter_rules) p.emplace_back("filter", rule);
  if (req.one_file_system) p.emplace_back("one-file-system", "1");
  return p;
}

WalkOptions walk_options(const std::vector<std::string>& rules, bool one_fs) {
  WalkOptions w;
  for (const auto& r : rules) w.filter.add_rule(r);
  w.one_file_system = one_fs;
  return w;
}

std::vector<std::string> agent_argv(const BackupRequest& req) {
  std::vector<std::string> argv = split_command(req.remote_command);
  if (argv.empty())
    fail(ErrorKind::usage, "use remote command", req.remote_command, "empty command");
  argv.emplace_back("agent");
  return argv;
}

// What the remote agent (or the shell before it) last wrote to stderr belongs to the error it
// explains: one line, not a warning line and an error line.
[[noreturn]] void rethrow_with_agent_stderr(const Error& e, const std::string& peer,
                                            const std::string& line) {
  if (line.empty() || std::string_view(e.what()).find(line) != std::string_view::npos) throw e;
  std::string reason = e.reason();
  if (e.code()) reason += (reason.empty() ? "" : ": ") + e.code().message();
  throw Error(e.kind(), e.operation(), e.subject(),
              reason + " (agent on " + peer + ": " + line + ")");
}

// A local REPO inside the local SOURCE would be copied into itself, growing with every run:
// it is excluded by an anchored rule ahead of the user's (glob characters escaped), and a
// REPO that is the SOURCE itself is refused.
void exclude_repo_from_source(BackupRequest& req) {
  std::error_code ec;
  fs::path src = fs::canonical(req.source, ec);
  if (ec) return;  // the walk reports a missing source
  fs::path repo = fs::canonical(req.repo, ec);
  if (ec) return;  // the receiver reports a missing repository
  if (repo == src)
    fail(ErrorKind::usage, "back up", req.source, "REPO is the source directory itself");
  fs::path rel = repo.lexically_relative(src);
  if (rel.empty() || *rel.begin() == "..") return;
  std::string rule = "- /";
  for (char c : rel.native()) {
    if (c == '*' || c == '?' || c == '[' || c == '\\') rule += '\\';
    rule += c;
  }
  rule += '/';
  req.filter_rules.insert(req.filter_rules.begin(), rule);
  log::info("REPO {} is inside SOURCE {}: it is left out of the snapshot", repo.native(),
            src.native());
}

// Pull: we receive; the agent at the other end of `stream` sends.
BackupResult pull(ByteStream& stream, const BackupRequest& req, const std::string& source_path,
                  const std::string& host, const WarningFn& warn,
                  std::shared_ptr<std::future<PreviousSnapshot>> prefetched) {
  Channel ch(stream);
  client_hello(ch, 'S', sender_params(source_path, req));
  ReceiverOptions ro{req.repo, host, req.source, std::move(prefetched), req.dry_run};
  BackupResult r = from_stats(run_receiver(ch, ro, warn));
  ch.close_write();
  return r;
}

}  // namespace

std::string default_snapshot_name(const std::string& source) {
  std::string name;
  if (auto remote = parse_remote(source)) {
    name = remote->host;
  } else {
    fs::path p = fs::absolute(source).lexically_normal();
    if (!p.has_filename()) p = p.parent_path();
    name = p.filename();
    if (name.empty() || name == "/") {
      char host[HOST_NAME_MAX + 1] = {};
      ::gethostname(host, sizeof host - 1);
      name = host;
    }
  }
  for (char& c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
          c == '_' || c == '-'))
      c = '_';
  if (name.size() > 64) name.resize(64);
  if (!name.empty() && name[0] == '.') name[0] = '_';
  if (name.empty()) name = "source";
  return name;
}

BackupResult run_backup(const BackupRequest& req, const WarningFn& warn) {
  auto src_remote = parse_remote(req.source);
  auto repo_remote = parse_remote(req.repo);
  if (src_remote && repo_remote)
    fail(ErrorKind::usage, "back up", req.source, "SOURCE and REPO cannot both be remote");
  std::string host = req.name.empty() ? default_snapshot_name(req.source) : req.name;
  if (!snapshot::valid_host_name(host))
    fail(ErrorKind::usage, "use snapshot name", host,
         "a name is made of letters, digits, '.', '_' and '-' and does not start with '.'");
  BackupResult result;
  if (src_remote) {
    // The previous catalog loads while SSH connects and authenticates.
    auto prefetched = std::make_shared<std::future<PreviousSnapshot>>(
        std::async(std::launch::async,
                   [repo = fs::path(req.repo), host] { return load_previous(repo, host); }));
    auto stream = ssh_exec(*src_remote, agent_argv(req));
    try {
      result = pull(*stream, req, src_remote->path, host, warn, prefetched);
    } catch (const Error& e) {
      rethrow_with_agent_stderr(e, stream->peer(), stream->last_stderr_line());
    }
    stream->exit_status();
  } else if (repo_remote) {
    auto stream = ssh_exec(*repo_remote, agent_argv(req));
    ReadAheadStream read_ahead(*stream);
    Channel ch(read_ahead);
    try {
      Params params{{"repo", repo_remote->path}, {"name", host}, {"source", req.source}};
      // An agent too old to know "dry-run" refuses the key: it never writes a real snapshot.
      if (req.dry_run) params.emplace_back("dry-run", "1");
      client_hello(ch, 'R', params);
      WalkOptions walk = walk_options(req.filter_rules, req.one_file_system);
      SenderOptions so{fs::path(req.source), walk};
      run_sender(ch, so, warn);
      Frame f = ch.receive();
      if (f.type != Msg::summary) ch.unexpected(f, "the end of the transfer");
      Decoder d(f.payload, ch.peer());
      result = from_stats(decode_summary(d));
      ch.close_write();
    } catch (const Error& e) {
      rethrow_with_agent_stderr(e, stream->peer(), stream->last_stderr_line());
    }
    stream->exit_status();
  } else {
    BackupRequest own = req;
    exclude_repo_from_source(own);
    std::vector<std::string> argv;
    if (req.local_agent_command.empty()) {
      argv = {fs::read_symlink("/proc/self/exe").native(), "agent"};
    } else {
      BackupRequest local = req;
      local.remote_command = req.local_agent_command;
      argv = agent_argv(local);
    }
    SpawnOptions so;
    so.pipe_stdin = true;
    so.pipe_stdout = true;
    Process agent(argv, so);
    // Bigger pipes: fewer wake-ups for a stream of small list and request frames.
    ::fcntl(agent.stdin_fd().get(), F_SETPIPE_SZ, 1 << 20);
    ::fcntl(agent.stdout_fd().get(), F_SETPIPE_SZ, 1 << 20);
    FdStream stream(std::move(agent.stdout_fd()), std::move(agent.stdin_fd()), "local agent");
    std::string path = fs::absolute(req.source).native();
    result = pull(stream, own, path, host, warn, nullptr);
    int rc = agent.wait();
    if (rc != 0 && rc != 3)
      log::warn("local agent exited with status {}", rc);  // 3: its warnings, already reported
  }
  result.host = host;
  return result;
}

namespace {

bool allowed(const fs::path& p, const std::vector<fs::path>& allow) {
  if (allow.empty()) return true;
  std::error_code ec;
  fs::path real = fs::weakly_canonical(p, ec);
  if (ec) return false;
  for (const auto& a : allow) {
    fs::path base = fs::weakly_canonical(a, ec);
    if (ec) continue;
    auto rel = real.lexically_relative(base);
    if (!rel.empty() && *rel.begin() != "..") return true;
  }
  return false;
}

}  // namespace

AgentOutcome run_agent(int in_fd, int out_fd, const AgentOptions& opts, const WarningFn& warn) {
  FdStream stream(in_fd, out_fd, "client");
  Channel ch(stream);
  Frame f = ch.receive();
  if (f.type != Msg::hello) ch.unexpected(f, "the handshake");
  Decoder d(f.payload, ch.peer());
  if (d.raw(kMagic.size()) != kMagic) d.malformed("not a coffer client");
  auto vmin = d.uvar(), vmax = d.uvar();
  char role = static_cast<char>(d.u8());
  Params params;
  for (auto n = d.uvar(); n > 0; --n) {
    std::string k(d.bytes());
    std::string v(d.bytes());
    params.emplace_back(std::move(k), std::move(v));
  }
  d.expect_end();
  try {
    if (vmin > kVersion || vmax < kVersion)
      fail(ErrorKind::failed, "start agent", "", "no common protocol version (agent speaks 1)");
    if (role != 'S' && role != 'R')
      fail(ErrorKind::failed, "start agent", "", "unknown role requested");
    if (role == 'S' && opts.receive_only)
      fail(ErrorKind::failed, "start agent", "", "this agent only receives (--receive-only)");
    if (role == 'R' && opts.send_only)
      fail(ErrorKind::failed, "start agent", "", "this agent only sends (--send-only)");
    std::string path, name, source;
    std::vector<std::string> rules;
    bool one_fs = false, dry_run = false;
    for (const auto& [k, v] : params) {
      if (k == "path" && role == 'S')
        path = v;
      else if (k == "filter" && role == 'S')
        rules.push_back(v);
      else if (k == "one-file-system" && role == 'S')
        one_fs = v == "1";
      else if (k == "repo" && role == 'R')
        path = v;
      else if (k == "name" && role == 'R')
        name = v;
      else if (k == "source" && role == 'R')
        source = v;
      else if (k == "dry-run" && role == 'R')
        dry_run = v == "1";
      else
        fail(ErrorKind::failed, "start agent", k, "unknown request parameter");
    }
    if (path.empty()) fail(ErrorKind::failed, "start agent", "", "no path requested");
    if (!allowed(path, opts.allow))
      fail(ErrorKind::failed, "start agent", path, "not below a path this agent allows (--allow)");
    Encoder ok;
    ok.raw(kMagic);
    ok.uvar(kVersion);
    ch.send(Msg::hello_ok, ok.data());
    if (role == 'S') {
      WalkOptions walk = walk_options(rules, one_fs);
      SenderOptions so{path, walk};
      SenderStats st = run_sender(ch, so, warn);
      // Wait for the receiver's SUMMARY (or its end of stream) before going away.
      Frame s = ch.receive();
      if (s.type != Msg::summary) ch.unexpected(s, "the end of the transfer");
      return {st.warnings, std::nullopt, {}};
    }
    if (!snapshot::valid_host_name(name))
      fail(ErrorKind::usage, "use snapshot name", name, "invalid name");
    ReceiverOptions ro{path, name, source, nullptr, dry_run};
    ReceiverStats st = run_receiver(ch, ro, warn);
    ch.flush();
    return {st.warnings, std::nullopt, {}};
  } catch (const PeerError& e) {
    return {0, e.kind(), e.what()};  // the client's own error: it reports it
  } catch (const Error& e) {
    // Told to the client, which prints it: printed here too it would be a second line (a local
    // agent shares the terminal; an SSH agent's stderr is shown by the client).
    if (send_error(ch, e.what())) return {0, e.kind(), e.what()};
    throw;
  }
}

}  // namespace coffer::transfer
